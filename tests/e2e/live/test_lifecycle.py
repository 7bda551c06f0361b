"""The whole lifecycle of a small cluster, as the nightly job runs it against real Hetzner.

``test_lifecycle`` runs on every target of ``conftest.target``: always on the simulated world
(so the harness is proven on every ``make test``), on real Hetzner only when configured. The
other tests check the harness itself on the simulator: whatever an interrupted run leaves
behind, the cleanup finds and removes by label, and it touches nothing that is not the run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import live_sweep

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import LiveRun  # type: ignore[import-not-found]

pytestmark = pytest.mark.e2e


def test_lifecycle(live_run: LiveRun) -> None:
    run = live_run
    run.write_config()
    file = ("-f", str(run.config))

    run.hk8s("config", "validate", *file)
    run.hk8s("image", "build", *file)

    created = json.loads(run.hk8s("create", "-o", "json", *file).stdout)
    assert sorted(created["configured"]) == [f"{run.name}-cp-1", f"{run.name}-workers-1"]
    assert created["health"] and all(check["ok"] for check in created["health"])
    servers = [n for n in run.owned()["servers"] if n.startswith(f"{run.name}-")]
    assert sorted(servers) == [f"{run.name}-cp-1", f"{run.name}-workers-1"]

    health = json.loads(run.hk8s("health", "-o", "json", *file).stdout)
    assert health["healthy"] is True

    plan = run.hk8s("plan", *file, check=False)
    assert plan.returncode == 0, run.redact(plan.stdout + plan.stderr)

    run.hk8s("destroy", "--yes", *file)
    assert run.owned() == {}
    leaked = run.leaked()  # hk8s' output, secrets.yaml, kubeconfig, talosconfig
    assert not leaked


# -------------------------------------------------------------- the harness, on the simulator
def killed_when(run: LiveRun, kill: Callable[[Any], bool], *args: str) -> int:
    """Run hk8s and SIGKILL it once the simulated API has served a request ``kill`` picks
    (before hk8s reads the answer), as a CI runner dying mid-run would. Its exit status."""
    world = run.target.world
    assert world is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "hk8s", *args],
        env=run.target.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def observer(record: Any, request: Any, response: Any) -> None:
        if kill(record) and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)

    api = world.world.hcloud.api
    world.call(lambda: api.observers.append(observer))
    try:
        return proc.wait(timeout=120)
    finally:
        world.call(lambda: api.observers.remove(observer))


def public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def server_created(record: Any) -> bool:
    return bool(record.method == "POST" and record.route == "/servers" and record.status == 201)


def test_cleanup_after_an_interrupted_create_leaves_nothing(sim_run: LiveRun) -> None:
    run = sim_run
    run.write_config()
    run.hk8s("image", "build", "-f", str(run.config))
    assert killed_when(run, server_created, "create", "-f", str(run.config)) == -signal.SIGKILL
    left = run.owned()
    assert left["servers"] and left["networks"] == [run.name]

    status, swept = run.cleanup()

    assert status == 0
    assert swept == {}  # hk8s destroy --name found everything by label
    assert run.owned() == {}


def test_destroy_removes_this_runs_build_leftovers_only(sim_run: LiveRun) -> None:
    run = sim_run
    run.write_config()
    status = killed_when(run, server_created, "image", "build", "-f", str(run.config))
    assert status == -signal.SIGKILL
    leftovers = run.owned()
    assert len(leftovers["servers"]) == 1 and leftovers["servers"][0].startswith("hk8s-build-")
    client = live_sweep.client(run.target.env)
    # A build key another run left an hour ago: not this run's to delete (a later
    # ``hk8s image build`` removes it by its age).
    old = client.ssh_keys.create(
        name="hk8s-build-amd64-older",
        public_key=public_key(),
        labels={
            "managed-by": "hk8s",
            "hk8s/role": "image-build",
            "hk8s/build": "older",
            "hk8s/created": str(int(time.time()) - 3600),
        },
    )

    destroyed, swept = run.cleanup()

    assert destroyed == 0
    # hk8s destroy removed the build server and key this cluster's run left (labelled
    # hk8s/build-for=<cluster>), so the test's own label sweep finds nothing; the old key of
    # another build stays.
    assert leftovers and swept == {}
    assert run.owned() == {}
    assert [k.name for k in client.ssh_keys.get_all()] == [old.name]


def test_a_leaked_token_is_found_and_never_shown(sim_run: LiveRun) -> None:
    run = sim_run
    token = run.target.token
    run.outputs += ["created", f"Authorization: Bearer {token}"]
    (run.dir / "kubeconfig").write_text(f"token: {token}\n")
    (run.dir / "talosconfig").write_text("no secret here\n")

    assert run.leaked() == ["output #1", str(run.dir / "kubeconfig")]
    assert token not in repr(run)
    assert run.redact(f"error near {token}!") == "error near <token>!"


def test_an_unreachable_api_fails_the_sweep_without_the_token(sim_run: LiveRun) -> None:
    run = sim_run
    run.target.env["HCLOUD_ENDPOINT"] = "http://127.0.0.1:9/v1"  # nothing listens on port 9

    with pytest.raises(live_sweep.SweepError) as failure:
        run.sweep()

    assert "the label sweep of e2e-" in str(failure.value)
    assert run.target.token not in str(failure.value)
    # no library traceback (its frames hold the Authorization header) is chained to it
    assert failure.value.__context__ is None and failure.value.__cause__ is None


def test_the_nightly_cleanup_step_deletes_e2e_leftovers_and_fails_the_run(
    sim_run: LiveRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """tests/live_sweep.py as the nightly workflow's last step runs it: after a job killed
    mid-create it deletes that cluster's resources, names them and exits 1; a second run finds
    nothing and exits 0; another cluster in the project is not touched."""
    run = sim_run
    run.write_config()
    api = live_sweep.client(run.target.env)
    other = api.networks.create(
        name="prod-net", ip_range="10.9.0.0/16", labels={"managed-by": "hk8s", "cluster": "prod"}
    )
    run.hk8s("image", "build", "-f", str(run.config))
    status = killed_when(run, server_created, "create", "-f", str(run.config))
    assert status == -signal.SIGKILL
    left = run.owned()
    assert left["servers"] and left["networks"] == [run.name]
    argv = ["--cluster-prefix", "e2e-", "--fail-if-deleted"]

    assert live_sweep.main(argv, env=run.target.env) == 1
    printed = capsys.readouterr().out
    assert f"deleted 1 networks: {run.name}" in printed
    assert run.target.token not in printed
    assert run.owned() == {}
    assert live_sweep.main(argv, env=run.target.env) == 0
    assert "nothing labelled cluster=e2e-*" in capsys.readouterr().out
    assert [n.name for n in api.networks.get_all()] == [other.name]


def test_the_cleanup_step_refuses_an_empty_prefix(sim_run: LiveRun) -> None:
    assert live_sweep.main(["--cluster-prefix", " "], env=sim_run.target.env) == 2
