"""A tiny real SSH server on 127.0.0.1 (paramiko's server side) for the SSH provider tests.

It accepts one public key, and answers a few canned commands the way a shell would:

- ``echo hello`` prints ``hello``, exit 0
- ``fail`` prints ``boom`` to stderr, exit 3
- ``progress`` prints dd-style progress with carriage returns to stderr, then ``done``
- ``hang`` never finishes (until the client closes the channel)
- anything else: ``sh: <cmd>: not found``, exit 127
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

import paramiko
import pytest
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from hk8s.providers.ssh import SSHKeyPair, generate_ed25519_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _handle(channel: paramiko.Channel, command: str) -> None:
    # Like sshd, leave closing to the client once the exit status is sent: a server-side close
    # can overtake paramiko's reply to the exec request and the client then sees no command.
    try:
        if command == "echo hello":
            channel.sendall(b"hello\n")
            channel.send_exit_status(0)
        elif command == "fail":
            channel.sendall_stderr(b"starting\nboom\n")
            channel.send_exit_status(3)
        elif command == "progress":
            for chunk in (b"10 MB copied\r", b"20 MB copied\r", b"30 MB copied\n"):
                channel.sendall_stderr(chunk)
            channel.sendall(b"done\n")
            channel.send_exit_status(0)
        elif command == "hang":
            pass
        else:
            channel.sendall_stderr(f"sh: {command}: not found\n".encode())
            channel.send_exit_status(127)
    finally:
        channel.status_event.wait(10)  # set when the client closes the channel
        with contextlib.suppress(Exception):
            channel.close()


class _Interface(paramiko.ServerInterface):
    def __init__(self, allowed: paramiko.PKey, commands: list[str]) -> None:
        self._allowed = allowed
        self._commands = commands

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == "root" and key == self._allowed:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode()
        self._commands.append(text)
        threading.Thread(target=_handle, args=(channel, text), daemon=True).start()
        return True


class FixtureSSHServer:
    """Listens on 127.0.0.1:``port``; ``start`` may be called late (a rescue system booting)."""

    def __init__(self, allowed: SSHKeyPair, port: int = 0) -> None:
        self.allowed = allowed
        self.host_key = generate_ed25519_key("host").paramiko_key()
        self.commands: list[str] = []
        self.port = port
        self.connections = 0
        self._sock: socket.socket | None = None
        self._transports: list[paramiko.Transport] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FixtureSSHServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(8)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            with contextlib.suppress(Exception):
                transport.start_server(
                    server=_Interface(self.allowed.paramiko_key(), self.commands)
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # the listening socket is only released once accept() returns
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on (yet)."""
    return _free_port()


@pytest.fixture
def make_server() -> Iterator[Callable[..., FixtureSSHServer]]:
    """Build (not start) fixture servers; every one is stopped after the test."""
    made: list[FixtureSSHServer] = []

    def make(allowed: SSHKeyPair, port: int = 0) -> FixtureSSHServer:
        made.append(FixtureSSHServer(allowed, port))
        return made[-1]

    yield make
    for srv in made:
        srv.stop()


@pytest.fixture
def key() -> SSHKeyPair:
    return generate_ed25519_key("hk8s-test")


@pytest.fixture
def server(key: SSHKeyPair) -> Iterator[FixtureSSHServer]:
    srv = FixtureSSHServer(key).start()
    yield srv
    srv.stop()
