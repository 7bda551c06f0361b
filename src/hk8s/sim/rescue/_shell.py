"""A small POSIX-like shell for the simulated rescue system.

Hetzner's rescue system is Debian with bash; hk8s sends it command lines over SSH. This shell
parses what an image build needs, with the real semantics: pipelines (``a | b``), lists
(``&&``, ``||``, ``;``, newlines), ``set -e``/``-o pipefail``, ``$VAR`` expansion, quoting,
and redirections to files or ``/dev/null``. Unsupported syntax and unknown commands fail the
way bash does (``bash: x: command not found``, exit 127) so a bad build never passes silently.

>>> shell = rescue_shell(Machine(disk=SimulatedDisk(10**9)))   # every command (``_commands``)
>>> shell.run("echo hi | head -c 1 && false || echo no").stdout
b'hno\\n'
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hk8s.sim.rescue._disk import SimulatedDisk

__all__ = ["CommandResult", "Input", "Machine", "Shell", "ShellExit", "fail", "parse_size"]

Input = Callable[[], bytes]
_OPERATORS = {"|", "&&", "||", ";"}
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*|\?))")


@dataclass
class CommandResult:
    stdout: bytes = b""
    stderr: bytes = b""
    code: int = 0


class ShellExit(Exception):
    """The session ends: ``exit``, or the machine powers off / reboots underneath it."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.code)
        self.result = result


@dataclass
class Machine:
    """What the commands act on: the disk, a tiny filesystem, and the outside world."""

    disk: SimulatedDisk
    arch: str = "amd64"
    hostname: str = "rescue"
    files: dict[str, bytes] = field(default_factory=dict)
    # Fetch a URL (loopback only); returns (status, body) or raises OSError.
    http_get: Callable[[str], tuple[int, bytes]] | None = None
    # The world's reaction to `poweroff` / `reboot` (called after the reply is sent).
    on_power: Callable[[str], None] | None = None


Command = Callable[["Shell", list[str], Input], CommandResult]


@dataclass
class _Simple:
    argv: list[str]
    stdout_to: str | None = None
    stderr_to: str | None = None
    stdin_from: str | None = None
    stderr_to_stdout: bool = False


class Shell:
    """Runs command lines against a ``Machine`` with ``commands`` (the rescue system's are
    ``_commands.COMMANDS``: ``rescue_shell``); one instance per SSH command."""

    def __init__(
        self,
        machine: Machine,
        env: dict[str, str] | None = None,
        *,
        commands: Mapping[str, Command],
    ) -> None:
        self.machine = machine
        self.env = {"HOME": "/root", "USER": "root", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        self.env.update(env or {})
        self.errexit = False
        self.pipefail = False
        self.last_status = 0
        self.commands: dict[str, Command] = dict(commands)

    def run(self, line: str, stdin: Input = lambda: b"") -> CommandResult:
        """Run a whole command line; stdout/stderr are collected, ``code`` is the exit status."""
        out = CommandResult()
        try:
            tokens = _tokenize(line)
        except ValueError as exc:
            return CommandResult(stderr=f"bash: syntax error: {exc}\n".encode(), code=2)
        try:
            self._run_list(tokens, stdin, out)
        except ShellExit as stop:
            out.stdout += stop.result.stdout
            out.stderr += stop.result.stderr
            out.code = stop.result.code
            return out
        out.code = self.last_status
        return out

    def run_argv(self, argv: list[str], stdin: Input) -> CommandResult:
        """Run one command given as words (what ``env``, ``timeout`` and ``xargs`` do)."""
        return self._run_simple(_Simple(argv=list(argv)), stdin)

    def _run_list(self, tokens: list[str], stdin: Input, out: CommandResult) -> None:
        skip_next = False
        for pipeline, op in _split_list(tokens):
            if not skip_next:
                status = self._run_pipeline(pipeline, stdin, out)
                self.last_status = status
                if status != 0 and self.errexit and op not in {"&&", "||"}:
                    raise ShellExit(CommandResult(code=status))
            status = self.last_status
            skip_next = (op == "&&" and status != 0) or (op == "||" and status == 0)

    def _run_pipeline(self, tokens: list[str], stdin: Input, out: CommandResult) -> int:
        stages = _split(tokens, "|")
        negate = bool(stages[0]) and stages[0][0] == "!"
        if negate:
            stages[0] = stages[0][1:]
        if any(not stage for stage in stages):
            out.stderr += b"bash: syntax error near unexpected token `|'\n"
            return 2
        data_in = stdin
        statuses: list[int] = []
        for stage in stages:
            result = self._run_simple(self._parse_simple(stage), data_in)
            out.stderr += result.stderr
            data = result.stdout
            data_in = _const(data)
            statuses.append(result.code)
        out.stdout += data
        status = statuses[-1]
        if self.pipefail:
            status = next((s for s in reversed(statuses) if s != 0), 0)
        return int(not status) if negate else status

    def _parse_simple(self, tokens: list[str]) -> _Simple:
        cmd = _Simple(argv=[])
        words = iter(tokens)
        for word in words:
            if word in {">", ">>", "<", "2>", "&>"}:
                target = self._expand(next(words, ""))
                if not target:
                    raise ShellExit(_fail(f"bash: syntax error near unexpected token `{word}'", 2))
                if word == "<":
                    cmd.stdin_from = target
                elif word == "2>":
                    cmd.stderr_to = target
                else:
                    cmd.stdout_to = target
                    cmd.stderr_to = target if word == "&>" else cmd.stderr_to
            elif word == "2>&1":
                cmd.stderr_to_stdout = True
            else:
                cmd.argv.append(self._expand(word))
        return cmd

    def _run_simple(self, cmd: _Simple, stdin: Input) -> CommandResult:
        if not cmd.argv:
            return CommandResult()
        name, args = cmd.argv[0], cmd.argv[1:]
        if cmd.stdin_from is not None:
            path = cmd.stdin_from
            stdin = _const(b"") if path == "/dev/null" else (lambda: self.read_file(path))
        handler = self.commands.get(name)
        if handler is None:
            result = _fail(f"bash: {name}: command not found", 127)
        else:
            try:
                result = handler(self, args, stdin)
            except FileNotFoundError as exc:
                result = _fail(f"{name}: {exc.filename}: No such file or directory", 1)
            except OSError as exc:
                result = _fail(f"{name}: {exc}", 1)
        if cmd.stderr_to_stdout:
            result.stdout, result.stderr = result.stdout + result.stderr, b""
        if cmd.stdout_to is not None:
            self.write_file(cmd.stdout_to, result.stdout)
            result.stdout = b""
        if cmd.stderr_to is not None and cmd.stderr_to != cmd.stdout_to:
            self.write_file(cmd.stderr_to, result.stderr)
            result.stderr = b""
        return result

    def _expand(self, word: str) -> str:
        if "$(" in word or "`" in word:
            raise ShellExit(_fail("bash: command substitution is not supported here", 2))

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return str(self.last_status) if name == "?" else self.env.get(name, "")

        return _VAR.sub(value, word)

    # Files: /dev/sda is the disk, /dev/null and /dev/zero behave; the rest lives in memory.
    def read_file(self, path: str, limit: int | None = None) -> bytes:
        if path == "/dev/null":
            return b""
        if path == "/dev/zero":
            if limit is None:
                raise OSError("reading /dev/zero without a length would never end")
            return bytes(limit)
        if path == "/dev/sda":
            disk = self.machine.disk
            return disk.read(0, disk.size if limit is None else limit)
        if path not in self.machine.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        data = self.machine.files[path]
        return data if limit is None else data[:limit]

    def write_file(self, path: str, data: bytes, offset: int = 0) -> None:
        if path == "/dev/null":
            return
        if path == "/dev/sda":
            self.machine.disk.write(offset, data)
            return
        if path.startswith("/dev/"):
            raise OSError(f"{path}: Permission denied")
        old = self.machine.files.get(path, b"")[:offset] if offset else b""
        self.machine.files[path] = old + data


def _const(data: bytes) -> Input:
    return lambda: data


def fail(message: str, code: int = 1) -> CommandResult:
    """A failed command: ``message`` on stderr (a newline is added) and exit status ``code``."""
    return CommandResult(stderr=(message + "\n").encode(), code=code)


_fail = fail
_SIZE = re.compile(r"^(\d+)([a-zA-Z]*)$")
_UNITS = {"": 1, "c": 1, "w": 2, "b": 512, "kB": 1000, "K": 1024, "KiB": 1024, "k": 1024}
for _i, _p in enumerate("MGTP", start=2):
    _UNITS[_p] = _UNITS[f"{_p}iB"] = 1024**_i
    _UNITS[f"{_p}B"] = 1000**_i


def parse_size(text: str) -> int:
    """GNU coreutils sizes: ``4M`` = 4 MiB, ``4MB`` = 4 MB, ``512`` bytes, ``1b`` = 512."""
    match = _SIZE.match(text)
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"invalid number: '{text}'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _tokenize(line: str) -> list[str]:
    line = line.replace("2>&1", " __2TO1__ ").replace("\n", " ; ")
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    tokens: list[str] = []
    for token in lexer:
        if token == "__2TO1__":
            tokens.append("2>&1")
        elif token in {">", ">>"} and tokens and tokens[-1] == "2":
            tokens[-1] = "2>"
        elif token in {"&", "|&", "&;", ";;", "(", ")"}:
            raise ValueError(f"near unexpected token `{token}'")
        else:
            tokens.append(token)
    return tokens


def _split(tokens: list[str], sep: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token == sep:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _split_list(tokens: list[str]) -> list[tuple[list[str], str]]:
    """Split at ``&&``, ``||``, ``;`` and newlines; each pipeline with the operator after it."""
    items: list[tuple[list[str], str]] = []
    current: list[str] = []
    for token in tokens:
        if token in _OPERATORS - {"|"}:
            if current:
                items.append((current, token))
            elif token in {"&&", "||"}:
                raise ShellExit(_fail(f"bash: syntax error near unexpected token `{token}'", 2))
            current = []
        else:
            current.append(token)
    if current:
        items.append((current, ";"))
    return items
