"""``hk8s sim up`` as a user runs it: a foreground process that prints what to export."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hcloud import APIException, Client

pytestmark = pytest.mark.e2e

HK8S = Path(sys.executable).with_name("hk8s")


def test_sim_up_prints_exports_serves_the_api_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("seed: 1\nerrors:\n  - {method: GET, path: /server_types, code: 503}\n")
    proc = subprocess.Popen(
        [str(HK8S), "sim", "up", "--speed", "50", "--faults", str(faults)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        env = {}
        while len(env) < 3:
            line = proc.stdout.readline()
            assert line, f"sim up ended early: {proc.stderr.read() if proc.stderr else ''}"
            key, _, value = line.strip().removeprefix("export ").partition("=")
            env[key] = value
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
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    assert code == 130


def test_sim_up_rejects_a_broken_fault_file(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("errors:\n  - {rate: 3}\n")
    result = subprocess.run(
        [str(HK8S), "sim", "up", "--faults", str(faults)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "errors.0.rate" in result.stderr
