"""The rescue shell's grammar and tools, without SSH (bash semantics, GNU tool messages)."""

from __future__ import annotations

import pytest

from hk8s.sim.factory import TalosImage, build_image
from hk8s.sim.rescue import Machine, Shell, SimulatedDisk, rescue_shell


@pytest.fixture
def shell() -> Shell:
    return rescue_shell(Machine(disk=SimulatedDisk(40 * 10**9, os_name="ubuntu-24.04")))


@pytest.mark.parametrize(
    ("line", "out", "code"),
    [
        ("echo a b | cat", "a b\n", 0),
        ("false || echo rescued", "rescued\n", 0),
        ("true && false && echo never", "", 1),
        ("false; echo $?", "1\n", 0),
        ("echo 'a | b' \"c;d\"", "a | b c;d\n", 0),
        ("echo -n x; echo y", "xy\n", 0),
        ("! false && echo negated", "negated\n", 0),
        ("echo hi > /tmp/f; cat /tmp/f; cat < /tmp/f", "hi\nhi\n", 0),
        ("echo $HOME-$NOPE.", "/root-.\n", 0),
        ("exit 3; echo never", "", 3),
        ("set -e\nfalse\necho never", "", 1),
        ("set -e; false || true; echo kept", "kept\n", 0),
    ],
)
def test_shell_grammar(shell: Shell, line: str, out: str, code: int) -> None:
    result = shell.run(line)
    assert (result.stdout.decode(), result.code) == (out, code)


@pytest.mark.parametrize(
    ("line", "message", "code"),
    [
        ("echo $(id)", "command substitution is not supported", 2),
        ("echo a &", "syntax error", 2),
        ("| cat", "syntax error", 2),
        ("head -n 1 /tmp/x", "head: option -n not recognized", 1),
        ("head /tmp/x", "only byte counts", 1),
        ("cat /nope", "cat: /nope: No such file or directory", 1),
        ("xz -z /tmp/x", "xz: option -z not recognized", 1),
        ("xz /tmp/x", "only decompresses", 1),
        ("dd if=/dev/zero of=/dev/sda", "reading /dev/zero without a length", 1),
        ("sha256sum /dev/sda", "reads of more than", 1),
        ("lsblk /dev/sdb", "not a block device", 32),
        ("wipefs /dev/sda", "only 'wipefs -a /dev/sda'", 1),
        ("shutdown -r +5", "unsupported arguments", 1),
    ],
)
def test_unsupported_input_fails_loudly(shell: Shell, line: str, message: str, code: int) -> None:
    result = shell.run(line)
    assert result.code == code
    assert message in result.stderr.decode()


def test_dd_units_offsets_and_summary(shell: Shell) -> None:
    result = shell.run("head -c 1K /dev/zero | dd of=/dev/sda bs=512 seek=2")
    assert result.code == 0
    assert result.stderr.decode().startswith("2+0 records in\n2+0 records out\n1024 bytes")
    assert shell.machine.disk.bytes_written == 1024
    assert shell.machine.disk.os_name is None  # the partition table was overwritten
    assert shell.run("dd if=/dev/sda bs=1 count=3 status=none").stdout == b"\0\0\0"


def test_xz_file_round_trip_and_wipefs(shell: Shell) -> None:
    image = TalosImage("v1.13.0", "amd64")
    shell.machine.files["/tmp/talos.raw.xz"] = build_image(image)
    assert shell.run("xz -d /tmp/talos.raw.xz && dd if=/tmp/talos.raw of=/dev/sda bs=4M").code == 0
    assert "/tmp/talos.raw.xz" not in shell.machine.files  # like xz without -k
    assert shell.machine.disk.image() == image
    assert shell.run("wipefs -a /dev/sda").code == 0
    assert shell.machine.disk.image() is None


def test_power_commands_end_the_session(shell: Shell) -> None:
    calls: list[str] = []
    shell.machine.on_power = calls.append
    result = shell.run("sync && reboot; echo never")
    assert (result.code, result.stdout, calls) == (0, b"", ["reboot"])
