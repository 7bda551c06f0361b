"""How commands talk to the user: text for people, JSON for pipelines.

Results go to stdout (one JSON document in ``--output json``); progress, warnings and errors
go to stderr, so ``hk8s ... -o json | jq`` always sees clean JSON. Kept free of rich so that
``hk8s --help`` starts fast; commands that draw progress import rich inside their function.
"""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from hk8s.errors import ConfigError, Hk8sError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Output", "OutputMode"]


class OutputMode(enum.StrEnum):
    text = "text"
    json = "json"


@dataclass
class Output:
    """Global options and the writer every command uses (``Output.of(ctx)``)."""

    mode: OutputMode = OutputMode.text
    verbose: int = 0
    debug: bool = False
    # The phase durations of the run that just ended (set by ``_progress.progress``): part of
    # the JSON result of every command that changes something.
    phases: list[dict[str, object]] | None = None

    @classmethod
    def of(cls, ctx: typer.Context, mode: OutputMode | None = None) -> Output:
        """The Output the app callback stored on the context (defaults when run bare).

        ``mode`` is a command's own ``--output`` (given after the command), which wins over
        the global one.
        """
        obj = ctx.find_root().obj
        out = obj if isinstance(obj, Output) else cls()
        if mode is not None:
            out.mode = mode
        return out

    @property
    def json(self) -> bool:
        return self.mode is OutputMode.json

    def result(self, data: Mapping[str, Any], text: str | None = None) -> None:
        """A command's result: ``data`` as JSON, or ``text`` (if given) for people."""
        if self.json:
            if self.phases is not None and "phases" not in data:
                data = {**data, "phases": self.phases}
            typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
        elif text is not None:
            typer.echo(text)

    def info(self, message: str) -> None:
        """Progress for people; silent in JSON mode (stderr either way)."""
        if not self.json:
            typer.echo(message, err=True)

    def detail(self, message: str) -> None:
        """Extra progress shown with ``-v``."""
        if self.verbose or self.debug:
            typer.echo(message, err=True)

    def warn(self, message: str) -> None:
        typer.echo(f"{_paint('warning:', 'yellow')} {message}", err=True)

    def failure(self, exc: BaseException, exit_code: int, *, changes: str = "") -> None:
        """Report an error: one clear message and hint; the traceback only with --debug.

        ``changes`` describes what this run had changed before the error (empty: nothing), so
        an error found late never reads as if the run had been refused up front.
        """
        if self.debug:
            import traceback

            from hk8s.cli._redact import redact

            sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        if self.json:
            data = describe_error(exc, exit_code)
            data["changes_made"] = changes
            typer.echo(json.dumps({"error": data}, indent=2))
            return
        if isinstance(exc, Hk8sError):
            typer.echo(f"{_paint('error:', 'red')} {exc}", err=True)
            if exc.hint:
                typer.echo(f"{_paint('hint:', 'cyan')} {exc.hint}", err=True)
            _changes_note(changes)
            return
        from hk8s.cli._redact import redact

        typer.echo(
            f"{_paint('error:', 'red')} internal error: {type(exc).__name__}: {redact(str(exc))}",
            err=True,
        )
        if not self.debug:
            typer.echo(
                f"{_paint('hint:', 'cyan')} this is a bug in hk8s; re-run with --debug for the "
                "traceback and report it",
                err=True,
            )
        _changes_note(changes)


def _changes_note(changes: str) -> None:
    if changes:
        typer.echo(
            f"{_paint('note:', 'cyan')} this run had already made changes ({changes}); they "
            "are kept, and running the command again after the fix continues from there",
            err=True,
        )


def describe_error(exc: BaseException, exit_code: int) -> dict[str, Any]:
    """The JSON shape of an error (``{"error": ...}`` on stdout in ``--output json``)."""
    data: dict[str, Any] = {"type": type(exc).__name__, "exit_code": exit_code}
    if isinstance(exc, Hk8sError):
        data["message"] = exc.message
        data["hint"] = exc.hint
        data["retryable"] = exc.retryable
        if exc.context:
            data["context"] = {k: str(v) for k, v in exc.context.items()}
    else:
        from hk8s.cli._redact import redact

        data["message"] = redact(str(exc))
    if isinstance(exc, ConfigError):
        data["source"] = exc.source
        data["problems"] = [
            {
                "path": p.path,
                "line": p.line,
                "column": p.column,
                "message": p.message,
                "hint": p.hint,
            }
            for p in exc.problems
        ]
    return data


def _paint(text: str, color: str) -> str:
    # click.style is cheap; click.echo strips the colours when stderr is not a terminal.
    return typer.style(text, fg=color, bold=True)
