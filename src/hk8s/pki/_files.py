"""Writing secrets to disk: mode 0600 from the first byte, atomically, no accidental clobber."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hk8s.errors import ConflictError
from hk8s.model import changes

__all__ = ["write_private_file"]


def write_private_file(path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool) -> Path:
    """Write ``data`` to ``path`` readable by the owner only, all at once.

    The content goes to a temporary file created with mode 0600 in the target directory
    (``mkstemp`` never opens it wider, whatever the umask), is fsynced, and then takes the
    target's name: ``os.replace`` when ``overwrite`` is true, otherwise ``os.link``, which fails
    if the target appeared meanwhile. A reader therefore sees the old file or the whole new one,
    never a partial or world-readable one. Raises ``ConflictError`` if the file exists and
    ``overwrite`` is false.

    >>> write_private_file("talosconfig", text, overwrite=True)
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    if not overwrite and target.exists():
        raise _exists(target)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise _exists(target) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    changes.record("local file")
    return target


def _exists(target: Path) -> ConflictError:
    return ConflictError(
        f"{target} already exists; refusing to overwrite it",
        hint="move it away or ask for it to be overwritten",
    )
