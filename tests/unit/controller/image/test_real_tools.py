"""The exact command strings of an image build, run by real bash, coreutils, xz and curl.

``/bin/sh`` (dash here, as on some rescue systems) is the login shell that receives them; the
locale is German; the image comes from a local HTTP server that cuts the first download
short; the "disk" is a file full of stale bytes. The simulated rescue shell must agree with
the real tools on every outcome hk8s depends on.
"""

from __future__ import annotations

import http.server
import lzma
import os
import shutil
import subprocess
import threading
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.controller.image._build import _BYTES, _SHA
from hk8s.controller.image._commands import (
    between_markers,
    discard_command,
    download_command,
    marked,
    remote,
    verify_command,
    write_command,
)
from hk8s.sim.rescue import Machine, SimulatedDisk, rescue_shell
from hk8s.sim.rescue._net import loopback_http_get

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "curl", "xz", "dd", "timeout", "sha256sum")),
    reason="needs bash, curl, xz and coreutils",
)

RAW = bytes(range(256)) * 12_288 + os.urandom(1 << 20)  # 4 MiB: compressible and not
IMAGE = lzma.compress(RAW, format=lzma.FORMAT_XZ, preset=1)


class _Factory(http.server.BaseHTTPRequestHandler):
    cut_short = 0  # this many requests get half the body, then the connection closes
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-xz")
        self.send_header("Content-Length", str(len(IMAGE)))
        self.end_headers()
        if type(self).cut_short > 0:
            type(self).cut_short -= 1
            self.wfile.write(IMAGE[: len(IMAGE) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(IMAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def factory() -> Iterator[tuple[str, type[_Factory]]]:
    handler = type("Factory", (_Factory,), {"cut_short": 0, "served": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hcloud-amd64.raw.xz", handler
    finally:
        server.shutdown()
        server.server_close()


def real(command: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """As sshd runs it: the login shell (/bin/sh) with a German locale."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "LANG": "de_DE.UTF-8"}
    return subprocess.run(
        command, shell=True, executable="/bin/sh", env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_download_discard_write_and_verify_with_the_real_tools(
    tmp_path: Path, factory: tuple[str, type[_Factory]]
) -> None:
    url, handler = factory
    handler.cut_short = 1  # the first download is cut short (curl exit 18), then retried
    download = str(tmp_path / "talos.raw.xz")
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xaa" * (8 << 20))  # stale content that must not survive

    fetched = real(remote(download_command(url, download), 60), tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert handler.served == 2
    assert (tmp_path / "talos.raw.xz").read_bytes() == IMAGE

    # blkdiscard cannot discard a regular file: the build goes on.
    assert real(remote(discard_command(str(disk)), 60), tmp_path).returncode == 0

    written = real(remote(write_command(download, str(disk)), 60), tmp_path)
    assert written.returncode == 0, written.stderr
    match = _BYTES.search(written.stderr)  # C locale: "N bytes (...) copied", not "Bytes"
    assert match is not None, written.stderr
    assert int(match.group(1)) == len(RAW)
    assert disk.read_bytes()[: len(RAW)] == RAW

    checked = real(remote(marked(verify_command(download, str(disk), len(RAW))), 60), tmp_path)
    assert checked.returncode == 0, checked.stderr
    sums = _SHA.findall(between_markers(checked.stdout))
    assert len(sums) == 2 and sums[0] == sums[1]


def test_a_pipeline_failure_is_not_hidden_by_dash(tmp_path: Path) -> None:
    """dash has no pipefail; the wrapper's bash does, so a failing xz fails the write."""
    (tmp_path / "bad.xz").write_bytes(b"not xz at all")
    result = real(
        remote(write_command(str(tmp_path / "bad.xz"), str(tmp_path / "d")), 60), tmp_path
    )
    assert result.returncode != 0
    assert "xz" in result.stderr


def test_the_remote_command_is_killed_when_it_times_out(tmp_path: Path) -> None:
    result = real(remote("sleep 30", 1), tmp_path)
    assert result.returncode == 124  # timeout(1): the command timed out and was terminated


# -- the simulated rescue shell against the same server, compared with the real tools


def sim(command: str, files: dict[str, bytes] | None = None) -> tuple[int, dict[str, bytes]]:
    machine = Machine(disk=SimulatedDisk(8 << 20), http_get=loopback_http_get)
    machine.files.update(files or {})
    result = rescue_shell(machine).run(command)
    return result.code, machine.files


@pytest.mark.parametrize(
    ("retry", "cut", "code", "complete"),
    [
        ("--retry 2 --retry-all-errors", 1, 0, True),  # retried after the cut
        ("", 1, 18, False),  # no retry: exit 18, the partial file stays
        ("--retry 2", 1, 18, False),  # 18 is no "transient" error for plain --retry
    ],
)
def test_the_simulated_curl_agrees_with_curl(
    tmp_path: Path,
    factory: tuple[str, type[_Factory]],
    retry: str,
    cut: int,
    code: int,
    complete: bool,
) -> None:
    url, handler = factory
    path = str(tmp_path / "image.xz")
    command = f"curl -fsSL {retry} -o {path} {url}"
    handler.cut_short = cut
    got = real(command, tmp_path)
    assert got.returncode == code, got.stderr
    real_data = (tmp_path / "image.xz").read_bytes()
    handler.cut_short = cut
    sim_code, files = sim(command)
    assert sim_code == code
    assert (files[path] == IMAGE) is complete
    assert (real_data == IMAGE) is complete
    assert len(files[path]) == len(real_data)


def test_the_simulated_xz_writes_partial_output_before_failing_like_xz(tmp_path: Path) -> None:
    half = IMAGE[: len(IMAGE) // 2]
    (tmp_path / "half.xz").write_bytes(half)
    got = real(f"xz -dc {tmp_path / 'half.xz'} > {tmp_path / 'out'}", tmp_path)
    assert got.returncode == 1
    real_out = (tmp_path / "out").read_bytes()
    assert real_out and RAW.startswith(real_out)
    machine = Machine(disk=SimulatedDisk(8 << 20))
    machine.files["/tmp/half.xz"] = half
    result = rescue_shell(machine).run("xz -dc /tmp/half.xz")
    assert result.code == 1
    assert b"Unexpected end of input" in result.stderr
    assert result.stdout and RAW.startswith(result.stdout)
