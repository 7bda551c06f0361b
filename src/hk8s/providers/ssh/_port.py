"""The SSH port: what the image build needs from a remote shell, and its results.

``hk8s image build`` talks to a freshly booted Hetzner rescue system: wait until SSH answers,
run a few commands (find the disk, stream the image onto it, verify, sync), read their output.
The controller sees only this Protocol and these types, never paramiko.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hk8s.errors import PermanentError

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.providers.ssh._keys import SSHKeyPair

__all__ = ["CommandFailedError", "CommandResult", "RemoteShell"]

# How much of a failed command's stderr an error message quotes.
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True)
class CommandResult:
    """What a remote command left behind: its exit code and (bounded) output."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _short(command: str, limit: int = 120) -> str:
    flat = " ".join(command.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class CommandFailedError(PermanentError):
    """A remote command exited non-zero; the message carries its exit code and stderr tail."""

    def __init__(self, command: str, result: CommandResult, *, host: str) -> None:
        tail = result.stderr.strip()[-STDERR_TAIL_CHARS:] or result.stdout.strip()[-500:]
        message = f"`{_short(command)}` failed on {host} with exit code {result.exit_code}"
        if tail:
            message += f": {tail}"
        super().__init__(message, host=host)
        self.command = command
        self.result = result
        self.status = result.exit_code


class RemoteShell(Protocol):
    """A shell on one remote machine, reached over SSH with a key.

    ``connect`` waits (with backoff, until ``timeout`` clock seconds have passed) for SSH to
    answer, because a rescue system takes minutes to boot. ``run`` and ``stream`` raise
    ``CommandFailedError`` for a non-zero exit unless ``check=False``, ``WaitTimeoutError``
    when the command outlives ``timeout``, ``UnavailableError`` when the connection drops.
    """

    async def connect(
        self, host: str, key: SSHKeyPair, *, timeout: float, port: int = 22, user: str = "root"
    ) -> None: ...

    async def run(self, command: str, *, timeout: float, check: bool = True) -> CommandResult: ...

    async def stream(
        self,
        command: str,
        *,
        timeout: float,
        on_output: Callable[[str], None],
        check: bool = True,
    ) -> CommandResult: ...

    async def close(self) -> None: ...
