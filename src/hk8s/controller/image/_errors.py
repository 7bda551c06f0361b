"""Why an image build failed, in words an operator can act on.

Each class is an ``hk8s.errors`` class (so the CLI exits 1 with the message and hint) and
carries the build's target and server in its context.
"""

from __future__ import annotations

from hk8s.errors import NotFoundError, PermanentError, WaitTimeoutError

__all__ = [
    "BootDiskNotFoundError",
    "ImageDownloadError",
    "ImageVerifyError",
    "RescueUnreachableError",
]


class RescueUnreachableError(WaitTimeoutError):
    """The rescue system never answered SSH with the build's key."""

    def __init__(self, host: str, timeout: float, *, last_error: str | None, **context: object):
        super().__init__(f"SSH on the rescue system at {host}", timeout, last_error=last_error)
        self.hint = (
            "the build server did not boot into the rescue system in time, or port 22 is "
            "blocked; the temporary server and key were removed, re-run `hk8s image build`"
        )
        self.context = {k: v for k, v in context.items() if v is not None}


class ImageDownloadError(NotFoundError):
    """The Image Factory has no such image (unknown Talos version or schematic: HTTP 404)."""


class BootDiskNotFoundError(NotFoundError):
    """The rescue system shows no writable disk to put Talos on."""


class ImageVerifyError(PermanentError):
    """What the disk holds is not what was downloaded."""
