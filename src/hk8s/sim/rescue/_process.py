"""Commands that run other commands: ``bash -c``, ``env`` and ``timeout``, as hk8s uses them.

hk8s wraps every rescue command as ``timeout -k 15 N env LC_ALL=C LANG=C bash --noprofile
--norc -c '<script>'`` (``hk8s.controller.image._commands``). These behave as GNU coreutils
and bash do for that use: ``env`` sets variables for the command it runs (and prints the
environment without one), ``bash -c`` runs a script in a fresh shell with its own ``set``
options, ``timeout`` checks its duration and options and runs the command. The simulated
machine runs every command to its end at once, so a duration never expires here; that a
real ``timeout`` kills a hung command is checked against the real tool in the tests.
"""

from __future__ import annotations

import getopt
import re
from typing import TYPE_CHECKING

from hk8s.sim.rescue._shell import CommandResult, Shell, fail

if TYPE_CHECKING:
    from hk8s.sim.rescue._shell import Command, Input

__all__ = ["PROCESS_COMMANDS"]

_NAME_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_DURATION = re.compile(r"^(\d+(\.\d*)?|\.\d+)[smhd]?$")


def _env(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    env = dict(shell.env)
    words = list(args)
    if words[:1] in (["-i"], ["--ignore-environment"]):
        env, words = {}, words[1:]
    while words and _NAME_VALUE.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if words and words[0].startswith("-"):
        return fail(f"env: invalid option -- '{words[0].lstrip('-')[:1]}'", 125)
    if not words:
        return CommandResult(stdout="".join(f"{k}={v}\n" for k, v in env.items()).encode())
    child = Shell(shell.machine, env, commands=shell.commands)
    child.env = env
    result = child.run_argv(words, stdin)
    if result.code == 127 and b"command not found" in result.stderr:
        return fail(f"env: '{words[0]}': No such file or directory", 127)
    return result


def _bash(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    words = list(args)
    script: str | None = None
    while words:
        word = words.pop(0)
        if word in {"--noprofile", "--norc", "-l", "--login", "--posix"}:
            continue
        if word == "-c":
            if not words:
                return fail("bash: -c: option requires an argument", 2)
            script = words.pop(0)
            break
        if word.startswith("-"):
            return fail(f"bash: {word}: invalid option", 2)
        return fail("bash: scripts from files are not available in this rescue system", 127)
    if script is None:
        return fail("bash: an interactive shell is not available over this session", 2)
    return Shell(shell.machine, dict(shell.env), commands=shell.commands).run(script, stdin)


def _timeout(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, rest = getopt.getopt(
            args, "k:s:v", ["kill-after=", "signal=", "preserve-status", "foreground", "verbose"]
        )
    except getopt.GetoptError as exc:
        return fail(f"timeout: {exc}\nTry 'timeout --help' for more information.", 125)
    for option, value in opts:
        if option in {"-k", "--kill-after"} and not _DURATION.match(value):
            return fail(f"timeout: invalid time interval '{value}'", 125)
    if len(rest) < 2:
        return fail("timeout: missing operand\nTry 'timeout --help' for more information.", 125)
    if not _DURATION.match(rest[0]):
        return fail(f"timeout: invalid time interval '{rest[0]}'", 125)
    result = shell.run_argv(rest[1:], stdin)
    if result.code == 127 and b"command not found" in result.stderr:
        return fail(f"timeout: failed to run command '{rest[1]}': No such file or directory", 127)
    return result


PROCESS_COMMANDS: dict[str, Command] = {"env": _env, "bash": _bash, "timeout": _timeout}
