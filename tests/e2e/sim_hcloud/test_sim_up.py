"""``hk8s sim up`` as a user runs it: a foreground process that prints what to export."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hcloud import APIException, Client

pytestmark = pytest.mark.e2e

HK8S = Path(sys.executable).with_name("hk8s")
NEEDED = {"HCLOUD_ENDPOINT", "HCLOUD_TOKEN", "HK8S_TIME_SCALE"}


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [str(HK8S), "sim", "up", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while not set(env) >= NEEDED:
        line = proc.stdout.readline()
        assert line, f"sim up ended early: {proc.stderr.read() if proc.stderr else ''}"
        key, _, value = line.strip().removeprefix("export ").partition("=")
        env[key] = value
    return proc, env


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=20)


@pytest.mark.parametrize("mode", [["--hcloud-only"], []], ids=["hcloud-only", "world"])
def test_sim_up_prints_exports_serves_the_api_and_stops_on_ctrl_c(
    tmp_path: Path, mode: list[str]
) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("seed: 1\nerrors:\n  - {method: GET, path: /server_types, code: 503}\n")
    proc, env = start("--speed", "50", "--faults", str(faults), *mode)
    try:
        assert env["HK8S_TIME_SCALE"] == "50"
        assert env["HCLOUD_ENDPOINT"].startswith("http://127.0.0.1:")
        client = Client(token=env["HCLOUD_TOKEN"], api_endpoint=env["HCLOUD_ENDPOINT"])
        assert {loc.name for loc in client.locations.get_all()} >= {"fsn1", "nbg1", "hel1"}
        with pytest.raises(APIException) as info:  # the fault file is in force
            client.server_types.get_all()
        assert info.value.code == "unavailable"
        with pytest.raises(APIException) as info:
            Client(token="wrong", api_endpoint=env["HCLOUD_ENDPOINT"]).locations.get_all()
        assert info.value.code == "unauthorized"
    finally:
        code = stop(proc)
    assert code == 130


def test_hcloud_only_serves_on_the_requested_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc, env = start("--hcloud-only", "--port", str(port))
    try:
        assert env["HCLOUD_ENDPOINT"] == f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def test_bad_flags_and_fault_files_are_usage_errors(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("errors:\n  - {rate: 3}\n")
    for args in (["--faults", str(faults), "--hcloud-only"], ["--port", "8080"]):
        result = subprocess.run(
            [str(HK8S), "sim", "up", *args], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2, result.stderr
    assert (
        "errors.0.rate"
        in subprocess.run(
            [str(HK8S), "sim", "up", "--faults", str(faults)],
            capture_output=True,
            text=True,
            timeout=30,
        ).stderr
    )
