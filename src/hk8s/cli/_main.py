"""The entry point: run the app, map every outcome to one message and an exit code.

Exit codes: 0 success, 1 the operation failed, 2 usage or config error, 3 ``plan`` found
changes, 130 interrupted. Only this module turns exceptions into exit codes.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

import typer

from hk8s.cli._app import build_app
from hk8s.cli._output import Output
from hk8s.errors import Hk8sError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PLAN_HAS_CHANGES",
    "EXIT_USAGE",
    "main",
    "run",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PLAN_HAS_CHANGES = 3
EXIT_INTERRUPTED = 130


def run(argv: Sequence[str] | None = None) -> int:
    """Run hk8s with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    from hk8s.model import changes

    args = list(sys.argv[1:] if argv is None else argv)
    state = Output(debug="--debug" in args)
    changes.reset()
    command = typer.main.get_command(build_app())
    try:
        result = command.main(args=args, prog_name="hk8s", standalone_mode=False, obj=state)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except typer.Abort:
        typer.echo("aborted", err=True)
        return EXIT_FAILED
    except typer.TyperException as exc:
        # Click's usage errors (exit 2) know how to show themselves with the usage line.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except Hk8sError as exc:
        # Exit 2 means "nothing was changed": only when that is true (see model.changes).
        code = exc.exit_code
        if code == EXIT_USAGE and changes.made():
            code = EXIT_FAILED
        state.failure(exc, code, changes=changes.describe())
        return code
    except BrokenPipeError:
        # The reader went away (``hk8s ... | head``): nothing left to tell anyone.
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:
        state.failure(exc, EXIT_FAILED, changes=changes.describe())
        return EXIT_FAILED
    # Commands return None; typer turns ``raise typer.Exit(n)`` into the int n here.
    return result if isinstance(result, int) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point (``hk8s``)."""
    sys.exit(run(argv))
