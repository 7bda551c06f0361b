"""The rescue system's SSH server: paramiko in server mode on ``<server-ip>:10022``.

Hetzner's rescue system accepts root logins with the SSH keys passed to ``enable_rescue`` and
with the root password the API returned. Each ``exec`` request runs through ``Shell`` against
the server's ``SimulatedDisk``; the reply carries stdout, stderr and the exit status as sshd
would. ``poweroff`` / ``reboot`` end the session and tell the world (``Machine.on_power``).

paramiko is thread-based, so the listener and each connection run in daemon threads; the
world (asyncio) only sees the thread-safe callbacks it passed in.

>>> rescue = RescueServer("127.0.0.5", 10022, machine, authorized_keys=[pub], password="pw")
>>> rescue.start()   # ...; rescue.stop()
"""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import threading
from typing import TYPE_CHECKING

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from hk8s.sim.rescue._commands import rescue_shell

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hk8s.sim.rescue._shell import Machine

__all__ = ["RESCUE_SSH_PORT", "RescueServer", "new_host_key"]

# Port 22 needs root; the simulator serves SSH here and publishes HK8S_PORT_MAP=22=10022.
RESCUE_SSH_PORT = 10022


def new_host_key() -> paramiko.PKey:
    """A fresh Ed25519 host key (paramiko cannot generate Ed25519 keys itself)."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))


def _key_blob(public_key: str) -> bytes:
    """The wire blob of an OpenSSH public key line (``ssh-ed25519 AAAA... comment``)."""
    parts = public_key.split()
    if len(parts) < 2:
        raise ValueError(f"not an OpenSSH public key: {public_key[:40]!r}")
    return base64.b64decode(parts[1])


class _Interface(paramiko.ServerInterface):
    def __init__(self, rescue: RescueServer) -> None:
        self._rescue = rescue

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == "root" and key.asbytes() in self._rescue.authorized_blobs:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        ok = username == "root" and bool(self._rescue.password)
        if ok and password == self._rescue.password:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        thread = threading.Thread(
            target=self._rescue.run_command,
            args=(channel, command.decode(errors="replace")),
            name=f"rescue-exec-{self._rescue.host}",
            daemon=True,
        )
        thread.start()
        return True

    def check_channel_env_request(
        self, channel: paramiko.Channel, name: bytes, value: bytes
    ) -> bool:
        return False  # sshd's default AcceptEnv accepts nothing useful here


class RescueServer:
    """One rescue system: a listening socket and the SSH sessions connected to it."""

    def __init__(
        self,
        host: str,
        port: int,
        machine: Machine,
        *,
        authorized_keys: Iterable[str] = (),
        password: str | None = None,
        host_key: paramiko.PKey | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.machine = machine
        self.authorized_blobs = {_key_blob(key) for key in authorized_keys}
        self.password = password
        self.host_key = host_key or new_host_key()
        self.commands: list[str] = []
        self._sock: socket.socket | None = None
        self._transports: list[paramiko.Transport] = []
        self._stopped = threading.Event()

    def start(self) -> RescueServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        self.port = sock.getsockname()[1]
        self._sock = sock
        threading.Thread(target=self._accept_loop, name=f"rescue-{self.host}", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and drop every session (the machine left rescue mode)."""
        self._stopped.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        for transport in list(self._transports):
            transport.close()

    def _accept_loop(self) -> None:
        sock = self._sock
        while sock is not None and not self._stopped.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self._transports = [t for t in self._transports if t.is_active()] + [transport]
            try:
                transport.start_server(server=_Interface(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()
                continue
            threading.Thread(target=self._serve, args=(transport,), daemon=True).start()

    def _serve(self, transport: paramiko.Transport) -> None:
        # Sessions are opened by the client; exec requests start their own threads. Accepted
        # channels must stay referenced: paramiko closes a Channel when it is collected.
        channels: list[paramiko.Channel] = []
        while transport.is_active() and not self._stopped.is_set():
            channel = transport.accept(timeout=0.5)
            channels = [c for c in channels if not c.closed]
            if channel is not None:
                channels.append(channel)

    def run_command(self, channel: paramiko.Channel, command: str) -> None:
        self.commands.append(command)

        def read_stdin() -> bytes:
            chunks = []
            while chunk := channel.recv(1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)

        cache: list[bytes] = []

        def stdin() -> bytes:
            if not cache:
                cache.append(read_stdin())
            return cache[0]

        try:
            result = rescue_shell(self.machine).run(command, stdin)
            if result.stdout:
                channel.sendall(result.stdout)
            if result.stderr:
                channel.sendall_stderr(result.stderr)
            channel.send_exit_status(result.code)
            channel.shutdown_write()
            # paramiko replies to the exec request only after check_channel_exec_request has
            # returned, from the transport thread; a close that overtakes that reply makes the
            # client fail with "Channel closed". The client already has the exit status and
            # EOF, so give the reply a moment (or the client time to close first).
            for _ in range(20):
                if channel.closed or self._stopped.wait(0.01):
                    break
        except (OSError, EOFError):
            pass  # the client went away, or the machine powered off underneath the session
        finally:
            with contextlib.suppress(OSError, EOFError):
                channel.close()
