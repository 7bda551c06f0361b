"""``RemoteShell`` on paramiko.

paramiko is blocking, so each connection attempt and each command runs in a worker thread;
waiting, backoff and command deadlines go through the injected ``Clock`` so the simulator can
run a rescue boot at many times real speed. Socket-level timeouts (connect, banner, auth) are
wall seconds, ``max(2, Timing.request_timeout)``: they bound one attempt, not the whole wait.

Host keys: a rescue system generates fresh host keys at every boot and Hetzner publishes no
fingerprint for them (docs.hetzner.com, "Hetzner Rescue System"), so there is nothing to verify
the first key against. The shell accepts the first key it sees for a host:port, records it, and
pins it for every later connection made through the same shell object: a different key on
reconnect is refused (``ConflictError``) instead of silently trusted. The key used to log in is
ephemeral and the rescue system is wiped by the image written to it, so the exposure is one
build. No system ``known_hosts``, no agent, no keys from ``~/.ssh``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import threading
from typing import TYPE_CHECKING

import paramiko

from hk8s.errors import AuthError, ConflictError, UnavailableError, WaitTimeoutError
from hk8s.model.net import rewrite_port
from hk8s.providers.ssh._port import CommandFailedError, CommandResult, _short

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hk8s.model import Clock, Timing
    from hk8s.providers.ssh._keys import SSHKeyPair

__all__ = ["ParamikoShell"]

# Output kept per stream; a dd/xz pipeline can print for minutes, errors quote the tail.
MAX_OUTPUT_BYTES = 1 << 20
_LINE_BREAK = re.compile(rb"[\r\n]")


class _RecordFirstKey(paramiko.MissingHostKeyPolicy):
    """Trust on first use, remembered in ``known`` (see the module docstring for why)."""

    def __init__(self, known: dict[str, paramiko.PKey]) -> None:
        self._known = known

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self._known[hostname] = key
        client.get_host_keys().add(hostname, key.get_name(), key)


class _Output:
    """A bounded output buffer that also cuts what arrives into lines for ``on_output``."""

    def __init__(self, emit: Callable[[str], None] | None) -> None:
        self._data = bytearray()
        self._partial = b""
        self._emit = emit

    def feed(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > MAX_OUTPUT_BYTES:
            del self._data[: len(self._data) - MAX_OUTPUT_BYTES]
        if self._emit is None:
            return
        pieces = _LINE_BREAK.split(self._partial + chunk)
        self._partial = pieces.pop()
        for piece in pieces:
            if piece.strip():
                self._emit(piece.decode(errors="replace"))

    def text(self) -> str:
        if self._emit is not None and self._partial.strip():
            self._emit(self._partial.decode(errors="replace"))
            self._partial = b""
        return self._data.decode(errors="replace")


class ParamikoShell:
    """One SSH connection to one host; see ``RemoteShell`` for the contract.

    ``environ`` is where ``HK8S_PORT_MAP`` is read (default ``os.environ``).
    """

    def __init__(
        self, *, clock: Clock, timing: Timing, environ: Mapping[str, str] | None = None
    ) -> None:
        self._clock = clock
        self._timing = timing
        self._environ = environ
        self._client: paramiko.SSHClient | None = None
        self._known: dict[str, paramiko.PKey] = {}
        self.host = ""

    @property
    def _socket_timeout(self) -> float:
        return max(2.0, self._timing.request_timeout)

    @property
    def host_key_fingerprint(self) -> str | None:
        """SHA256 fingerprint of the host key accepted for the current host, for the log."""
        key = self._known.get(self.host)
        return key.fingerprint if key is not None else None

    async def connect(
        self, host: str, key: SSHKeyPair, *, timeout: float, port: int = 22, user: str = "root"
    ) -> None:
        await self.close()
        address, real_port = rewrite_port(host, port, self._environ)
        self.host = address if real_port == 22 else f"[{address}]:{real_port}"
        deadline = self._clock.now() + timeout
        failures = 0
        while True:
            try:
                self._client = await asyncio.to_thread(
                    self._connect_once, address, real_port, user, key
                )
                return
            except UnavailableError as exc:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        f"SSH on {host}:{port}", timeout, last_error=exc.message
                    ) from exc
            failures += 1
            await self._clock.sleep(min(self._timing.retry_delay(failures), remaining))

    def _connect_once(
        self, address: str, port: int, user: str, key: SSHKeyPair
    ) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        for name, known in self._known.items():
            client.get_host_keys().add(name, known.get_name(), known)
        client.set_missing_host_key_policy(_RecordFirstKey(self._known))
        seconds = self._socket_timeout
        where = f"{address}:{port}"
        try:
            client.connect(
                hostname=address,
                port=port,
                username=user,
                pkey=key.paramiko_key(),
                timeout=seconds,
                banner_timeout=seconds,
                auth_timeout=seconds,
                channel_timeout=seconds,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise ConflictError(
                f"SSH host key of {where} changed since hk8s first connected",
                hint="another machine may answer at this address; re-run the build",
                host=where,
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise AuthError(
                f"SSH on {where} refused the key {key.fingerprint_sha256} for {user}",
                hint="the rescue system was enabled with another key; re-run the build",
                host=where,
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise UnavailableError(f"SSH on {where} not reachable: {exc}", host=where) from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        return client

    async def run(self, command: str, *, timeout: float, check: bool = True) -> CommandResult:
        return await self._execute(command, timeout, None, check)

    async def stream(
        self,
        command: str,
        *,
        timeout: float,
        on_output: Callable[[str], None],
        check: bool = True,
    ) -> CommandResult:
        return await self._execute(command, timeout, on_output, check)

    async def _execute(
        self,
        command: str,
        timeout: float,
        on_output: Callable[[str], None] | None,
        check: bool,
    ) -> CommandResult:
        client = self._client
        if client is None:
            raise UnavailableError("SSH is not connected", hint="call connect() first")
        loop = asyncio.get_running_loop()
        emit = None
        if on_output is not None:
            callback = on_output

            def emit(line: str) -> None:
                loop.call_soon_threadsafe(callback, line)

        cancel = threading.Event()
        work = asyncio.ensure_future(
            asyncio.to_thread(self._exec_blocking, client, command, cancel, emit)
        )
        timer = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not work.done():
                cancel.set()
                with contextlib.suppress(Exception):
                    await work
        if work.cancelled() or cancel.is_set():
            raise WaitTimeoutError(f"`{_short(command)}` on {self.host}", timeout)
        result = work.result()
        if check and not result.ok:
            raise CommandFailedError(command, result, host=self.host)
        return result

    def _exec_blocking(
        self,
        client: paramiko.SSHClient,
        command: str,
        cancel: threading.Event,
        emit: Callable[[str], None] | None,
    ) -> CommandResult:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise UnavailableError(f"SSH connection to {self.host} was lost", host=self.host)
        out, err = _Output(emit), _Output(emit)
        try:
            channel = transport.open_session(timeout=self._socket_timeout)
            try:
                channel.exec_command(command)
                # No stdin: send EOF now, like `ssh host cmd </dev/null`, so a command that
                # reads its input cannot wait forever.
                channel.shutdown_write()
                while not cancel.is_set():
                    got = False
                    while channel.recv_ready():
                        out.feed(channel.recv(65536))
                        got = True
                    while channel.recv_stderr_ready():
                        err.feed(channel.recv_stderr(65536))
                        got = True
                    if channel.exit_status_ready() and not got:
                        break
                    if not got:
                        select.select([channel], [], [], 0.05)
                status = channel.recv_exit_status() if not cancel.is_set() else -1
            finally:
                channel.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise UnavailableError(
                f"SSH connection to {self.host} failed: {exc}", host=self.host
            ) from exc
        if status == -1 and not cancel.is_set():
            raise UnavailableError(
                f"SSH connection to {self.host} closed before `{_short(command)}` finished",
                host=self.host,
            )
        return CommandResult(exit_code=status, stdout=out.text(), stderr=err.text())

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)


if TYPE_CHECKING:
    from hk8s.providers.ssh._port import RemoteShell

    _implements: type[RemoteShell] = ParamikoShell  # mypy checks the port is satisfied
