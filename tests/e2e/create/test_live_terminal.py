"""``hk8s create`` on a terminal: the live view runs (rich on a pseudo-terminal of a fixed
size), is gone when the command ends, and the phase durations are what stays."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from typing import TYPE_CHECKING

from e2e_support import hk8s_argv

if TYPE_CHECKING:
    from .conftest import CreateWorld

ROWS, COLS = 20, 100


def run_on_terminal(world: CreateWorld, *args: str) -> tuple[int, str]:
    """hk8s with stderr on a ROWS x COLS pseudo-terminal; its exit code and what it drew."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {k: v for k, v in world.env.items() if k != "NO_COLOR"}
    env |= {"TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    proc = subprocess.Popen(
        hk8s_argv(*args, "-f", str(world.config)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=240), b"".join(chunks).decode(errors="replace")


def test_create_on_a_terminal_draws_phases_and_ends_with_their_durations(
    world: CreateWorld,
) -> None:
    world.write_config("name: demo\nlocation: fsn1\n")
    code, drawn = run_on_terminal(world, "create")
    assert code == 0, drawn[-3000:]
    assert "\x1b[" in drawn  # drawn with terminal control sequences: the live view ran
    assert "machine configs" in drawn and "1/1" in drawn
    tail = drawn[drawn.rindex("phase durations") :]
    for phase in ("servers", "machine configs", "etcd", "Kubernetes API", "addons", "health"):
        assert phase in tail, tail
