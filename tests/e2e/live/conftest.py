"""Where the lifecycle test runs: the simulated world (always) or real Hetzner (when asked).

``target`` is parametrized: ``sim`` starts the whole simulated world in a thread and points
hk8s' environment at it; ``hcloud`` runs against the real API and is skipped unless
``HK8S_E2E_TARGET=hcloud`` and ``HCLOUD_TOKEN`` are set (design.md §7), so the nightly job and
``make test`` run the very same test code.

``LiveRun`` is one run's cluster: a unique name from the run id, the hk8s subprocesses, and
``cleanup()``, which the fixture calls in every outcome: ``hk8s destroy --name <name> --yes``,
then a sweep with the hcloud library of everything labelled ``cluster=<name>`` and of image
build servers/keys (``hk8s/role=image-build``) created since the run started. Anything the
sweep had to delete is a failure of the run (destroy should have left nothing), reported after
it is gone. The token is passed only in the environment, and every text this module shows
(assertion messages, the cleanup report) has it replaced by ``<token>``.

Environment (hcloud target): ``HCLOUD_TOKEN``, ``HCLOUD_ENDPOINT`` (optional),
``HK8S_E2E_LOCATION`` (default fsn1), ``HK8S_E2E_RUN_ID`` (default ``GITHUB_RUN_ID``, else
random), ``HK8S_E2E_DELETE_IMAGES=1`` (also delete the Talos snapshot the run built).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

import live_sweep
from e2e_support import child_env
from hk8s.model.clock import ScaledClock
from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from hk8s.sim.world import ThreadedWorld

TARGET_ENV = "HK8S_E2E_TARGET"
SIM_SPEED = 100.0
# Variables that point hk8s at a simulator: never passed on to a run against real Hetzner.
SIM_ONLY_ENV = (
    "HK8S_TIME_SCALE", "HK8S_PORT_MAP", "HK8S_MY_IP_URL", "HK8S_IMAGE_FACTORY", "HK8S_S3_ENDPOINT",
    "HK8S_S3_BUCKET",
)  # fmt: skip
# Per hk8s command, in wall seconds: a real image build or create takes minutes.
COMMAND_TIMEOUT = {"sim": 120.0, "hcloud": 2400.0}
TEST_TIMEOUT = {"sim": 180, "hcloud": 3 * 3600}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each target its own time budget (pytest-timeout), from the ``target`` param."""
    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here):
            continue  # this hook sees the whole session's items
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec is not None else None
        if target in TEST_TIMEOUT:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT[target]))


@dataclass
class Target:
    """An API hk8s can run against: ``env`` for its processes, ``world`` when simulated."""

    name: str
    env: dict[str, str] = field(repr=False)  # holds the token: kept out of tracebacks
    location: str
    world: ThreadedWorld | None = None

    @property
    def token(self) -> str:
        return self.env["HCLOUD_TOKEN"]

    @property
    def speed(self) -> float:
        return float(self.env.get("HK8S_TIME_SCALE") or 1.0)


@pytest.fixture(params=["sim", "hcloud"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "sim":
        with sim_target() as simulated:
            yield simulated
        return
    if os.environ.get(TARGET_ENV) != "hcloud" or not os.environ.get("HCLOUD_TOKEN"):
        pytest.skip(f"real Hetzner runs only with {TARGET_ENV}=hcloud and HCLOUD_TOKEN set")
    env = {k: v for k, v in os.environ.items() if k not in SIM_ONLY_ENV}
    yield Target("hcloud", {**env, "NO_COLOR": "1"}, location())


@pytest.fixture
def sim() -> Iterator[Target]:
    """The simulated target alone, for tests of the harness itself."""
    with sim_target() as simulated:
        yield simulated


@contextlib.contextmanager
def sim_target() -> Iterator[Target]:
    """The whole simulated world in a thread, and an environment that points at it."""
    with World.start_in_thread(speed=SIM_SPEED) as threaded:
        env = child_env(threaded.env)
        yield Target("sim", env, location(), threaded)


def location() -> str:
    return os.environ.get("HK8S_E2E_LOCATION") or "fsn1"


def run_id() -> str:
    raw = os.environ.get("HK8S_E2E_RUN_ID") or os.environ.get("GITHUB_RUN_ID") or ""
    clean = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:24]
    # A suffix of our own: a re-run of the same CI job must not meet the first attempt's name.
    return f"{clean}-{secrets.token_hex(2)}" if clean else secrets.token_hex(4)


@dataclass
class LiveRun:
    """One run's cluster on a target, the hk8s commands it ran, and its cleanup."""

    target: Target
    dir: Path
    name: str
    started: float = field(default_factory=time.time)  # UNIX seconds, as hk8s/created
    outputs: list[str] = field(default_factory=list, repr=False)  # may hold a leak

    @property
    def config(self) -> Path:
        return self.dir / "cluster.yaml"

    def write_config(self) -> None:
        """1 control plane + 1 worker: the smallest cluster that runs every addon."""
        data: dict[str, Any] = {
            "name": self.name,
            "location": self.target.location,
            "control_plane": {"count": 1},
            "workers": [{"name": "workers", "count": 1}],
        }
        if self.target.world is not None:
            data["talos"] = {"image_factory": self.target.world.world.factory_url}
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))

    def redact(self, text: str) -> str:
        return text.replace(self.target.token, "<token>")

    def hk8s(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``hk8s <args>``; ``check``: exit 0, or fail showing its (redacted) stderr. A run
        past its time limit is killed and reported as exit status -1."""
        argv = [sys.executable, "-m", "hk8s", *args]
        limit = COMMAND_TIMEOUT[self.target.name]
        try:
            result = subprocess.run(
                argv,
                env=self.target.env,
                capture_output=True,
                text=True,
                timeout=limit,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            # Not re-raised: subprocess' frames hold ``env`` (the token) for --showlocals.
            out, err = (_text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {limit:g} s")
            result = subprocess.CompletedProcess(argv, -1, out, err)
        self.outputs += [result.stdout, result.stderr]
        if check and result.returncode != 0:
            pytest.fail(
                f"hk8s {' '.join(args)} exited {result.returncode}:\n"
                + self.redact(result.stderr[-4000:])
            )
        return result

    # ------------------------------------------------------------------ cleanup
    def _owned(self, labels: Mapping[str, str]) -> bool:
        return labels.get("cluster") == self.name

    def _built_since_start(self, labels: Mapping[str, str]) -> bool:
        """Build servers/keys carry a build id, not the cluster: those created since this run
        started are its own (a build started by another run in this window would go too)."""
        try:
            return float(labels.get("hk8s/created", "")) >= self.started - 60
        except ValueError:
            return False

    def owned(self) -> dict[str, list[str]]:
        """What is left on the target of this run: kind -> names."""

        def names() -> dict[str, list[str]]:
            api = live_sweep.client(self.target.env)
            found = live_sweep.find(
                api, f"cluster={self.name}", self._owned, self._built_since_start
            )
            return {kind: [r.name for r in items] for kind, items in found.items() if items}

        return live_sweep.safely(self.target.token, f"listing what is left of {self.name}", names)

    def cleanup(self) -> tuple[int, dict[str, list[str]]]:
        """``hk8s destroy --name`` then the label sweep: (destroy's exit status, what the
        sweep found still there and deleted)."""
        args = ["destroy", "--name", self.name, "--yes"]
        if os.environ.get("HK8S_E2E_DELETE_IMAGES") == "1":
            args.append("--images")
        status = self.hk8s(*args, check=False).returncode  # -1 if it hung: still sweep
        return status, self.sweep()

    def leaked(self) -> list[str]:
        """Outputs and files of this run that contain the token (by index or path; never the
        text itself, so a failing assertion cannot show it)."""
        token = self.target.token
        found = [f"output #{i}" for i, text in enumerate(self.outputs) if token in text]
        files = (p for p in self.dir.rglob("*") if p.is_file())
        return found + [str(p) for p in files if token.encode() in p.read_bytes()]

    def sweep(self) -> dict[str, list[str]]:
        """Delete everything ``owned`` sees, round after round, until nothing is left."""
        return live_sweep.safely(
            self.target.token,
            f"the label sweep of {self.name}",
            lambda: live_sweep.sweep(
                live_sweep.client(self.target.env),
                f"cluster={self.name}",
                self._owned,
                self._built_since_start,
                ScaledClock(self.target.speed),
            ),
        )


@pytest.fixture
def live_run(target: Target, tmp_path: Path) -> Iterator[LiveRun]:
    """A run on ``target`` whose cluster is destroyed and swept whatever the test does."""
    yield from _cleaned(LiveRun(target, tmp_path, f"e2e-{run_id()}"))


@pytest.fixture
def sim_run(sim: Target, tmp_path: Path) -> LiveRun:
    """A run on the simulated target that the test cleans up itself (harness tests)."""
    return LiveRun(sim, tmp_path, f"e2e-{run_id()}")


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _cleaned(run: LiveRun) -> Iterator[LiveRun]:
    try:
        yield run
    finally:
        status, swept = run.cleanup()
        leaked = run.leaked()
        assert not leaked, "the Hetzner token appeared in these outputs/files"
        assert status == 0, f"hk8s destroy --name {run.name} --yes exited {status}"
        assert not swept, f"destroy left resources the label sweep deleted: {swept}"
