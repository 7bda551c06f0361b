"""Finding the disk to write Talos to, from ``lsblk -J`` in the rescue system.

A Hetzner cloud server has one system disk (``/dev/sda``; attached volumes come after it as
``sdb``...). The rescue system may also show loop and RAM devices, and an empty virtual drive
of size 0. So: the whole, writable, non-removable disks with a size; ``sda`` if it is one of
them, else the first. util-linux prints ``ro``/``rm`` as booleans since 2.33 and as
``"0"``/``"1"`` before, sizes as numbers or strings, and omits ``path`` in old versions; all are
accepted. The command runs under bash with a C locale (``image._commands``) and its output is
read between markers, so a login shell's chatter cannot spoil the JSON.

>>> pick_boot_disk('{"blockdevices": [{"name": "sda", "type": "disk", "size": 9}]}')
'/dev/sda'
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hk8s.controller.image._commands import LSBLK, between_markers, marked, remote
from hk8s.controller.image._errors import BootDiskNotFoundError

if TYPE_CHECKING:
    from hk8s.providers.ssh import RemoteShell

__all__ = ["LSBLK_COMMAND", "find_boot_disk", "pick_boot_disk"]

LSBLK_COMMAND = remote(marked(LSBLK), 60)
_HINT = "the build server's rescue system shows no disk; re-run, or try another location"


def _flag(value: object) -> bool:
    return value in {True, "1", "true"}


def _size(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def pick_boot_disk(lsblk_json: str) -> str | None:
    """The device path of the system disk in ``lsblk -J`` output, or None."""
    try:
        devices = json.loads(between_markers(lsblk_json)).get("blockdevices", [])
    except (ValueError, AttributeError):
        return None
    disks: list[str] = []
    for device in devices if isinstance(devices, list) else []:
        if not isinstance(device, dict) or device.get("type") != "disk":
            continue
        if _flag(device.get("ro")) or _flag(device.get("rm")) or _size(device.get("size")) <= 0:
            continue
        name = str(device.get("name") or "")
        path = str(device.get("path") or (f"/dev/{name}" if name else ""))
        if path:
            disks.append(path)
    if "/dev/sda" in disks:
        return "/dev/sda"
    return disks[0] if disks else None


async def find_boot_disk(shell: RemoteShell, timeout: float, *, server: str) -> str:
    """Ask the rescue system's ``lsblk``; ``BootDiskNotFoundError`` when there is no disk."""
    result = await shell.run(LSBLK_COMMAND, timeout=timeout, check=False)
    if not result.ok:
        raise BootDiskNotFoundError(
            f"lsblk failed on {server} (exit {result.exit_code}): {result.stderr.strip()[:300]}",
            hint=_HINT,
            server=server,
        )
    disk = pick_boot_disk(result.stdout)
    if disk is None:
        raise BootDiskNotFoundError(
            f"no writable disk found on {server}", hint=_HINT, server=server
        )
    return disk
