"""What a plain Job's container prints, for ``kubectl logs job/<name>``.

The simulated kubelets run no programs. A Job whose container only echoes (``kubectl create
job hello --image=busybox -- echo hello``, or ``sh -c 'echo ...'``) is common enough in
examples and tests that its output is played: the words echo would print. Anything else
prints nothing, as a program that writes no output.
"""

from __future__ import annotations

import shlex
from typing import Any

__all__ = ["echo_output"]


def _echo(argv: list[str]) -> str | None:
    if not argv or argv[0].rsplit("/", 1)[-1] != "echo":
        return None
    words = argv[1:]
    newline = not (words and words[0] == "-n")
    text = " ".join(words[1:] if not newline else words)
    return text + ("\n" if newline else "")


def echo_output(container: dict[str, Any]) -> str:
    """The output of ``command`` + ``args`` when it is an ``echo``, else ``""``.

    >>> echo_output({"command": ["echo", "hello", "world"]})
    'hello world\\n'
    >>> echo_output({"command": ["sh", "-c"], "args": ["echo 'one two'"]})
    'one two\\n'
    >>> echo_output({"command": ["sleep", "5"]})
    ''
    """
    argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    shell = argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"])
    if shell and len(argv) == 3:
        try:
            argv = shlex.split(argv[2])
        except ValueError:
            return ""
    return _echo(argv) or ""
