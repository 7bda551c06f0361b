"""Block-device tools of the rescue shell: lsblk, fdisk -l, dd, blkdiscard, wipefs.

Output formats follow util-linux and coreutils (``lsblk -J`` -> ``{"blockdevices": [...]}``,
``fdisk -l``'s "Disk /dev/sda: ..." header, ``dd``'s records in/out summary on stderr).
"""

from __future__ import annotations

import getopt
import json
from typing import TYPE_CHECKING

from hk8s.sim.rescue._shell import CommandResult, fail, parse_size

if TYPE_CHECKING:
    from hk8s.sim.rescue._shell import Command, Input, Shell

__all__ = ["BLOCK_COMMANDS", "human_size"]

_COLUMNS = {"NAME", "KNAME", "PATH", "SIZE", "TYPE", "MODEL", "RO", "RM", "ROTA", "MOUNTPOINT"}
_COLUMNS |= {"MOUNTPOINTS", "MAJ:MIN", "FSTYPE"}


def human_size(size: int) -> str:
    """lsblk's default size format: binary units, one decimal unless whole ("38.1G", "1M")."""
    value = float(size)
    for unit in "BKMGTP":
        if value < 1024 or unit == "P":
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1024
    raise AssertionError("unreachable")


def _devices(shell: Shell) -> list[dict[str, object]]:
    disk = shell.machine.disk
    row: dict[str, object] = {
        "NAME": "sda",
        "KNAME": "sda",
        "PATH": "/dev/sda",
        "SIZE": disk.size,
        "TYPE": "disk",
        "MODEL": "QEMU HARDDISK",
        "RO": False,
        "RM": False,
        "ROTA": True,
        "MOUNTPOINT": None,
        "MOUNTPOINTS": [None],
        "MAJ:MIN": "8:0",
        "FSTYPE": None,
    }
    if disk.os_name is not None:
        # A stock Hetzner image: root partition, BIOS boot and EFI partitions.
        parts = [("sda1", disk.size - (257 << 20), "ext4"), ("sda14", 1 << 20, None)]
        parts.append(("sda15", 256 << 20, "vfat"))
        row["children"] = [
            {**row, "NAME": name, "KNAME": name, "PATH": f"/dev/{name}", "SIZE": size}
            | {"TYPE": "part", "MODEL": None, "FSTYPE": fs, "MAJ:MIN": f"8:{name[3:]}"}
            for name, size, fs in parts
        ]
    return [row]


def _lsblk(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, devices = getopt.gnu_getopt(
            args, "dnbJpo:", ["nodeps", "noheadings", "bytes", "json", "paths", "output="]
        )
    except getopt.GetoptError as exc:
        return fail(f"lsblk: {exc}\nTry 'lsblk --help' for more information.", 1)
    names = {o for o, _ in opts}
    columns = ["NAME", "MAJ:MIN", "RM", "SIZE", "RO", "TYPE", "MOUNTPOINTS"]
    for option, value in opts:
        if option in {"-o", "--output"}:
            columns = [c.strip().upper() for c in value.split(",") if c.strip()]
    bad = [c for c in columns if c not in _COLUMNS]
    if bad:
        return fail(f"lsblk: unknown column: {bad[0]}", 1)
    for device in devices:
        if device != "/dev/sda":
            return fail(f"lsblk: {device}: not a block device", 32)
    rows = _devices(shell)
    if names & {"-d", "--nodeps"}:
        rows = [{k: v for k, v in row.items() if k != "children"} for row in rows]
    in_bytes = bool(names & {"-b", "--bytes"})
    paths = bool(names & {"-p", "--paths"})

    def cell(row: dict[str, object], column: str) -> object:
        value = row[column]
        if column == "SIZE" and not in_bytes:
            return human_size(int(str(value)))
        if column == "NAME" and paths:
            return row["PATH"]
        return value

    if names & {"-J", "--json"}:

        def node(row: dict[str, object]) -> dict[str, object]:
            item = {c.lower(): cell(row, c) for c in columns}
            children = row.get("children")
            if isinstance(children, list):
                item["children"] = [node(child) for child in children]
            return item

        doc = {"blockdevices": [node(row) for row in rows]}
        return CommandResult(stdout=(json.dumps(doc, indent=3) + "\n").encode())
    flat: list[tuple[str, dict[str, object]]] = []
    for row in rows:
        flat.append(("", row))
        children = row.get("children")
        if isinstance(children, list):
            flat += [("└─" if i == len(children) - 1 else "├─", c) for i, c in enumerate(children)]
    table = [[_text(cell(row, c)) for c in columns] for _, row in flat]
    for (prefix, _), line in zip(flat, table, strict=True):
        if columns[0] == "NAME":
            line[0] = prefix + line[0]
    if not names & {"-n", "--noheadings"}:
        table.insert(0, columns)
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    text = "".join(
        " ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in table
    )
    return CommandResult(stdout=text.encode())


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, list):
        return "" if value == [None] else ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _fdisk(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    if not args or args[0] != "-l" or any(a != "/dev/sda" for a in args[1:]):
        return fail("fdisk: only 'fdisk -l [/dev/sda]' is available in this rescue system", 1)
    size = shell.machine.disk.size
    text = (
        f"Disk /dev/sda: {size / 1024**3:.2f} GiB, {size} bytes, {size // 512} sectors\n"
        "Disk model: QEMU HARDDISK   \n"
        "Units: sectors of 1 * 512 = 512 bytes\n"
        "Sector size (logical/physical): 512 bytes / 512 bytes\n"
        "I/O size (minimum/optimal): 512 bytes / 512 bytes\n"
    )
    return CommandResult(stdout=text.encode())


def _dd(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    operands: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in {"if", "of", "bs", "count", "seek", "conv", "status"} | {
            "oflag",
            "iflag",
            "ibs",
            "obs",
        }:
            return fail(f"dd: unrecognized operand '{arg}'\nTry 'dd --help' for more information.")
        operands[key] = value
    try:
        block = parse_size(operands.get("bs", operands.get("obs", "512")))
        count = parse_size(operands["count"]) if "count" in operands else None
        seek = parse_size(operands.get("seek", "0"))
    except ValueError as exc:
        return fail(f"dd: {exc}")
    status = operands.get("status", "")
    if status not in {"", "none", "noxfer", "progress"}:
        return fail(f"dd: invalid status level: '{status}'")
    limit = None if count is None else count * block
    source = operands.get("if", "-")
    data = stdin() if source == "-" else shell.read_file(source, limit=limit)
    data = data if limit is None else data[:limit]
    target = operands.get("of", "-")
    out = CommandResult()
    if target == "-":
        out.stdout = data
    else:
        shell.write_file(target, data, offset=seek * block)
    full, partial = divmod(len(data), block)
    if status != "none":
        records = f"{full}+{int(partial > 0)} records"
        out.stderr = f"{records} in\n{records} out\n".encode()
        if status != "noxfer":
            out.stderr += f"{len(data)} bytes copied, 0.5 s, {len(data) * 2} B/s\n".encode()
    return out


def _blkdiscard(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        _, devices = getopt.gnu_getopt(args, "fv", ["force", "verbose"])
    except getopt.GetoptError as exc:
        return fail(f"blkdiscard: {exc}")
    if devices != ["/dev/sda"]:
        return fail("blkdiscard: no device specified" if not devices else "blkdiscard: bad usage")
    shell.machine.disk.discard()
    return CommandResult()


def _wipefs(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, devices = getopt.gnu_getopt(args, "afq", ["all", "force", "quiet"])
    except getopt.GetoptError as exc:
        return fail(f"wipefs: {exc}")
    if not {o for o, _ in opts} & {"-a", "--all"} or devices != ["/dev/sda"]:
        return fail("wipefs: only 'wipefs -a /dev/sda' is available in this rescue system")
    shell.machine.disk.wipe_signatures()
    return CommandResult()


BLOCK_COMMANDS: dict[str, Command] = {
    "lsblk": _lsblk,
    "fdisk": _fdisk,
    "dd": _dd,
    "blkdiscard": _blkdiscard,
    "wipefs": _wipefs,
}
