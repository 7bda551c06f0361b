"""Shell builtins and coreutils for the rescue shell: echo, set, exit, cat, head, cmp, ...

Options are parsed with ``getopt`` in GNU mode, so unknown options fail with the same kind of
message and exit status (1, or 2 for builtins) as the real tools.
"""

from __future__ import annotations

import getopt
import hashlib
from typing import TYPE_CHECKING

from hk8s.sim.rescue._blockdev import BLOCK_COMMANDS
from hk8s.sim.rescue._net import NET_COMMANDS, xz
from hk8s.sim.rescue._process import PROCESS_COMMANDS
from hk8s.sim.rescue._shell import CommandResult, Shell, ShellExit, fail, parse_size

if TYPE_CHECKING:
    from hk8s.sim.rescue._shell import Command, Input, Machine

__all__ = ["COMMANDS", "rescue_shell"]


def _echo(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    newline = True
    while args and args[0] in {"-n", "-e", "-E", "-ne", "-en"}:
        newline = newline and "n" not in args[0]
        args = args[1:]
    return CommandResult(stdout=(" ".join(args) + ("\n" if newline else "")).encode())


def _true(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    return CommandResult()


def _false(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    return CommandResult(code=1)


def _set(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    flags = {"e": "errexit", "u": "nounset", "x": "xtrace", "o": "", "v": "verbose"}
    words = iter(args)
    for word in words:
        if word[:1] not in "-+" or len(word) < 2:
            return fail(f"bash: set: {word}: invalid option", 2)
        on = word[0] == "-"
        for letter in word[1:]:
            if letter not in flags:
                return fail(f"bash: set: {word[0]}{letter}: invalid option", 2)
            name = flags[letter] or next(words, "")
            if name not in {"errexit", "nounset", "xtrace", "verbose", "pipefail"}:
                return fail(f"bash: set: {name}: invalid option name", 2)
            if name == "errexit":
                shell.errexit = on
            elif name == "pipefail":
                shell.pipefail = on
    return CommandResult()


def _exit(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    code = int(args[0]) if args and args[0].isdigit() else shell.last_status
    raise ShellExit(CommandResult(code=code & 0xFF))


def _cat(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    out = CommandResult()
    for path in args or ["-"]:
        try:
            out.stdout += stdin() if path == "-" else shell.read_file(path)
        except FileNotFoundError:
            out.stderr += f"cat: {path}: No such file or directory\n".encode()
            out.code = 1
    return out


def _head(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, files = getopt.gnu_getopt(args, "c:q", ["bytes=", "quiet"])
        count = next((parse_size(v) for o, v in opts if o in {"-c", "--bytes"}), None)
    except (getopt.GetoptError, ValueError) as exc:
        return fail(f"head: {exc}\nTry 'head --help' for more information.")
    if count is None:
        return fail("head: only byte counts (-c N) are supported by this rescue system")
    path = files[0] if files else "-"
    data = stdin()[:count] if path == "-" else shell.read_file(path, limit=count)
    return CommandResult(stdout=data)


def _sha256sum(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        _, files = getopt.gnu_getopt(args, "b", ["binary"])
    except getopt.GetoptError as exc:
        return fail(f"sha256sum: {exc}")
    out = CommandResult()
    for path in files or ["-"]:
        data = stdin() if path == "-" else shell.read_file(path)
        out.stdout += f"{hashlib.sha256(data).hexdigest()}  {path}\n".encode()
    return out


def _cmp(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, files = getopt.gnu_getopt(args, "sn:", ["silent", "quiet", "bytes="])
        limit = next((parse_size(v) for o, v in opts if o in {"-n", "--bytes"}), None)
    except (getopt.GetoptError, ValueError) as exc:
        return fail(f"cmp: {exc}", 2)
    silent = any(o in {"-s", "--silent", "--quiet"} for o, _ in opts)
    if len(files) not in {1, 2}:
        return fail("cmp: missing operand after '%s'" % (files[0] if files else "cmp"), 2)
    names = [*files, "-"][:2]
    blobs = [stdin() if n == "-" else shell.read_file(n, limit=limit) for n in names]
    a, b = (blob if limit is None else blob[:limit] for blob in blobs)
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            line = a[:index].count(b"\n") + 1
            text = f"{names[0]} {names[1]} differ: byte {index + 1}, line {line}\n"
            return CommandResult(stdout=b"" if silent else text.encode(), code=1)
    if len(a) != len(b):
        shorter = names[0] if len(a) < len(b) else names[1]
        size = min(len(a), len(b))
        return fail("" if silent else f"cmp: EOF on {shorter} after byte {size}", 1)
    return CommandResult()


def _uname(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    machine = "x86_64" if shell.machine.arch == "amd64" else "aarch64"
    if args in ([], ["-s"]):
        return CommandResult(stdout=b"Linux\n")
    if args in (["-m"], ["-p"]):
        return CommandResult(stdout=f"{machine}\n".encode())
    if args == ["-n"]:
        return CommandResult(stdout=f"{shell.machine.hostname}\n".encode())
    return fail(f"uname: unsupported option -- '{' '.join(args)}'")


def _power(action: str) -> Command:
    def run(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
        allowed = {
            "poweroff": [[], ["-f"]],
            "halt": [[], ["-p"]],
            "reboot": [[], ["-f"]],
            "shutdown": [["-h", "now"], ["-P", "now"], ["now"], ["-r", "now"], ["-h", "0"]],
        }
        if args not in allowed[action]:
            return fail(f"{action}: unsupported arguments: {' '.join(args)}")
        kind = "reboot" if action == "reboot" or args[:1] == ["-r"] else "poweroff"
        if shell.machine.on_power is not None:
            shell.machine.on_power(kind)
        raise ShellExit(CommandResult(code=0))

    return run


COMMANDS: dict[str, Command] = {
    "echo": _echo,
    "true": _true,
    ":": _true,
    "false": _false,
    "set": _set,
    "exit": _exit,
    "cat": _cat,
    "head": _head,
    "sha256sum": _sha256sum,
    "cmp": _cmp,
    "uname": _uname,
    "sync": _true,
    "xz": xz,
    "poweroff": _power("poweroff"),
    "halt": _power("halt"),
    "reboot": _power("reboot"),
    "shutdown": _power("shutdown"),
    **BLOCK_COMMANDS,
    **NET_COMMANDS,
    **PROCESS_COMMANDS,
}


def rescue_shell(machine: Machine, env: dict[str, str] | None = None) -> Shell:
    """A shell with every command of the simulated rescue system."""
    return Shell(machine, env, commands=COMMANDS)
