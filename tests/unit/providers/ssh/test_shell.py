from __future__ import annotations

import base64
import contextlib
import socket
import threading
from typing import TYPE_CHECKING

import paramiko
import pytest

from hk8s.errors import AuthError, ConflictError, UnavailableError, WaitTimeoutError
from hk8s.model import ManualClock, ScaledClock, Timing
from hk8s.providers.ssh import (
    CommandFailedError,
    ParamikoShell,
    SSHKeyPair,
    generate_ed25519_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    MakeServer = Callable[..., Any]

TIMING = Timing(request_timeout=5.0)


def port_map(port: int) -> dict[str, str]:
    return {"HK8S_PORT_MAP": f"22={port}"}


async def connected(server: Any, key: SSHKeyPair) -> ParamikoShell:
    shell = ParamikoShell(clock=ScaledClock(), timing=TIMING, environ=port_map(server.port))
    await shell.connect("127.0.0.1", key, timeout=10)
    return shell


def test_generated_key_is_openssh_ed25519_and_matches_private_half() -> None:
    pair = generate_ed25519_key("hk8s-build-x")
    kind, blob, comment = pair.public_openssh.split()
    assert (kind, comment) == ("ssh-ed25519", "hk8s-build-x")
    assert base64.b64decode(blob) == pair.paramiko_key().asbytes()
    assert len(pair.fingerprint_md5.split(":")) == 16
    assert blob not in repr(pair) and "PRIVATE" not in repr(pair)
    assert generate_ed25519_key().public_openssh != pair.public_openssh


async def test_connect_through_port_map_and_run(server: Any, key: SSHKeyPair) -> None:
    shell = await connected(server, key)
    result = await shell.run("echo hello", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "hello\n", "")
    assert shell.host_key_fingerprint == server.host_key.fingerprint
    await shell.close()


async def test_failed_command_raises_with_exit_code_and_stderr_tail(
    server: Any, key: SSHKeyPair
) -> None:
    shell = await connected(server, key)
    with pytest.raises(CommandFailedError) as info:
        await shell.run("fail", timeout=10)
    assert info.value.status == 3
    assert "exit code 3" in str(info.value) and "boom" in str(info.value)
    unchecked = await shell.run("no-such-tool --flag", timeout=10, check=False)
    assert unchecked.exit_code == 127 and "not found" in unchecked.stderr
    await shell.close()


async def test_stream_reports_progress_lines(server: Any, key: SSHKeyPair) -> None:
    shell = await connected(server, key)
    lines: list[str] = []
    result = await shell.stream("progress", timeout=10, on_output=lines.append)
    assert result.ok and result.stdout == "done\n"
    assert lines.count("done") == 1
    assert [x for x in lines if "copied" in x] == ["10 MB copied", "20 MB copied", "30 MB copied"]
    await shell.close()


async def test_command_outliving_its_timeout_is_stopped(server: Any, key: SSHKeyPair) -> None:
    shell = ParamikoShell(clock=ScaledClock(100.0), timing=TIMING, environ=port_map(server.port))
    await shell.connect("127.0.0.1", key, timeout=10)
    with pytest.raises(WaitTimeoutError, match="hang"):
        await shell.run("hang", timeout=20)  # 0.2 s of wall time at speed 100
    assert (await shell.run("echo hello", timeout=1000)).ok  # the connection is still usable
    await shell.close()


async def test_wrong_key_is_an_auth_error_without_retrying(
    server: Any,
) -> None:
    clock = ManualClock()
    shell = ParamikoShell(clock=clock, timing=TIMING, environ=port_map(server.port))
    with pytest.raises(AuthError, match="refused the key"):
        await shell.connect("127.0.0.1", generate_ed25519_key(), timeout=600)
    assert clock.slept == [] and server.connections == 1


async def test_waits_with_backoff_for_a_server_that_starts_late(
    key: SSHKeyPair, make_server: MakeServer, free_port: int
) -> None:
    server = make_server(key, port=free_port)

    class BootingClock(ManualClock):
        """The rescue system comes up after the client has backed off three times."""

        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            if len(self.slept) == 3:
                server.start()

    clock = BootingClock()
    shell = ParamikoShell(
        clock=clock, timing=Timing(retry_initial=1.0), environ=port_map(server.port)
    )
    await shell.connect("127.0.0.1", key, timeout=600)
    assert clock.slept == [1.0, 2.0, 4.0]
    assert shell.host_key_fingerprint == server.host_key.fingerprint
    await shell.close()


async def test_never_answering_host_times_out_with_last_error(
    key: SSHKeyPair, free_port: int
) -> None:
    clock = ManualClock()
    shell = ParamikoShell(clock=clock, timing=TIMING, environ=port_map(free_port))
    with pytest.raises(WaitTimeoutError) as info:
        await shell.connect("127.0.0.1", key, timeout=120)
    assert "SSH on 127.0.0.1:22" in str(info.value)
    assert info.value.last_error is not None and "not reachable" in info.value.last_error
    assert 119 < clock.now() <= 120.0 + 1e-9
    assert isinstance(info.value.__cause__, UnavailableError)


async def test_changed_host_key_on_reconnect_is_refused(
    key: SSHKeyPair, make_server: MakeServer
) -> None:
    first = make_server(key).start()
    port = first.port
    shell = ParamikoShell(clock=ScaledClock(), timing=TIMING, environ=port_map(port))
    await shell.connect("127.0.0.1", key, timeout=10)
    await shell.close()
    first.stop()
    make_server(key, port=port).start()  # same address, new host key
    with pytest.raises(ConflictError, match="host key"):
        await shell.connect("127.0.0.1", key, timeout=10)


async def test_run_without_connect_is_unavailable() -> None:
    shell = ParamikoShell(clock=ManualClock(), timing=TIMING)
    with pytest.raises(UnavailableError):
        await shell.run("echo hello", timeout=1)


def test_paramiko_key_is_usable_for_signing(key: SSHKeyPair) -> None:
    pkey = key.paramiko_key()
    signature = pkey.sign_ssh_data(b"payload")
    msg = paramiko.Message(signature.asbytes())
    public = paramiko.Ed25519Key(data=pkey.asbytes())
    assert public.verify_ssh_sig(b"payload", msg)


async def test_banner_errors_are_retried_until_sshd_answers(
    key: SSHKeyPair, make_server: MakeServer, free_port: int
) -> None:
    """A booting machine may accept TCP before sshd speaks SSH (or something else answers)."""
    impostor = socket.socket()
    impostor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    impostor.bind(("127.0.0.1", free_port))
    impostor.listen(4)
    stop = threading.Event()

    def not_ssh() -> None:
        impostor.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = impostor.accept()
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                conn.close()

    thread = threading.Thread(target=not_ssh, daemon=True)
    thread.start()
    server = make_server(key, port=free_port)

    class BootingClock(ManualClock):
        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            if len(self.slept) == 2:
                stop.set()
                thread.join()
                impostor.close()
                server.start()

    clock = BootingClock()
    shell = ParamikoShell(clock=clock, timing=TIMING, environ=port_map(free_port))
    await shell.connect("127.0.0.1", key, timeout=600)
    assert len(clock.slept) == 2
    assert shell.host_key_fingerprint == server.host_key.fingerprint
    await shell.close()
