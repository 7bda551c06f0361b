"""What the e2e conftests share: hk8s as a subprocess, killed mid-run, against a threaded sim.

Each ``tests/e2e/<area>/conftest.py`` keeps its own dataclass (what it reads from the
simulator differs per area); the parts that were the same everywhere live here. Imported by
name (``import e2e_support``), as ``tests`` is on pytest's ``pythonpath``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections import UserList
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from hk8s.sim.world import ThreadedWorld, World

    Observer = Callable[[Any, Any, Any], None]

# HTTP methods the simulated Hetzner API counts as mutating.
MUTATING = ("POST", "PUT", "DELETE")


def child_env(sim_env: dict[str, str], **extra: str) -> dict[str, str]:
    """hk8s' environment: this process', pointed at the simulator, without colours."""
    return {**os.environ, **sim_env, "NO_COLOR": "1", **extra}


def hk8s_argv(*args: str) -> list[str]:
    """``python -m hk8s <args>`` with the interpreter running the tests."""
    return [sys.executable, "-m", "hk8s", *args]


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """hk8s as a child process whose stdout/stderr a test reads (text)."""
    return subprocess.Popen(
        hk8s_argv(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc`` unless it has already exited."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def observing(threaded: Any, api: Any, observer: Observer) -> Iterator[None]:
    """``observer(record, request, response)`` sees every request the simulated Hetzner
    ``api`` serves (before hk8s gets the answer) while the block runs; installed and removed
    on the simulator's loop."""
    threaded.call(lambda: api.observers.append(observer))
    try:
        yield
    finally:
        threaded.call(lambda: api.observers.remove(observer))


def run_killed_after(
    threaded: Any, api: Any, argv: list[str], env: dict[str, str], mutations: int, **popen: Any
) -> int:
    """Run ``argv`` (output discarded) and SIGKILL it the moment ``api`` has served
    ``mutations`` mutating requests (before their answers reach it). Returns the exit status."""
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen
    )
    seen = [0]

    def observer(record: Any, request: Any, response: Any) -> None:
        if record.method in MUTATING:
            seen[0] += 1
            if seen[0] == mutations:
                os.kill(proc.pid, signal.SIGKILL)

    with observing(threaded, api, observer):
        return proc.wait(timeout=60)


def check_ok(result: subprocess.CompletedProcess[str]) -> None:
    """Fail unless hk8s exited 0, showing the tails of what it printed."""
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


@dataclass
class AuditedList(UserList[str]):
    """A live view of ``read()`` (the API server's audit log): ``clear()`` hides what was
    logged so far, and every read shows what came after."""

    def __init__(self, read: Callable[[], list[str]]) -> None:
        self._read = read
        self._skip = 0
        super().__init__()

    @property  # type: ignore[override]
    def data(self) -> list[str]:
        return self._read()[self._skip :]

    @data.setter
    def data(self, value: list[str]) -> None:
        return None

    def clear(self) -> None:
        self._skip = len(self._read())


@dataclass
class WorldRun:
    """The whole simulated world in a thread, hk8s' environment, and the directory holding
    ``cluster.yaml``; ``outputs`` keeps everything hk8s printed (to grep for the token)."""

    threaded: ThreadedWorld
    env: dict[str, str]
    dir: Path
    outputs: list[str] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.threaded.world

    @property
    def config(self) -> Path:
        return self.dir / "cluster.yaml"

    def write_dedented(self, text: str, suffix: str) -> None:
        self.config.write_text(textwrap.dedent(text) + suffix)

    # -- the cluster's real Kubernetes API, with the simulated machines' identity
    def kube(self) -> Any:
        """The cluster's ``ClusterKube`` (control plane, machines, frontends)."""
        [kube] = self.world.kubes.values()
        return kube

    def kube_get(self, path: str, **query: str) -> dict[str, Any]:
        return dict(self.threaded.run(self.kube().api.get(path, **query)))

    def kube_items(self, path: str, **query: str) -> list[dict[str, Any]]:
        """The items of a list (``/api/v1/nodes``), as the real API server holds them."""
        return list(self.kube_get(path, **query).get("items") or [])

    def kube_names(self, path: str, **query: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.kube_items(path, **query))

    def kube_create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        return dict(self.threaded.run(self.kube().api.create(path, obj)))

    def kube_patch(self, path: str, patch: dict[str, Any], kind: str = "merge") -> dict[str, Any]:
        return dict(self.threaded.run(self.kube().api.patch(path, patch, kind=kind)))

    def audit(self) -> list[dict[str, Any]]:
        """Evictions and Node updates the API server served (its audit log, in order)."""
        return list(self.kube().plane.audit_events())

    def evictions(self) -> list[str]:
        """``ns/pod`` of every eviction the API server granted, in order."""
        return [
            f"{e['objectRef'].get('namespace', '')}/{e['objectRef'].get('name', '')}"
            for e in self.audit()
            if e["objectRef"].get("subresource") == "eviction"
            and e.get("verb") == "create"
            and int((e.get("responseStatus") or {}).get("code", 0)) < 300
        ]

    def cordons(self) -> list[str]:
        """``cordon <node>``/``uncordon <node>`` for every Node update that set
        ``spec.unschedulable``, in order."""
        out = []
        for event in self.audit():
            ref, request = event["objectRef"], event.get("requestObject") or {}
            spec = request.get("spec") if isinstance(request, dict) else None
            # Only patches of spec.unschedulable itself: the node lifecycle controller's
            # patches of the node.kubernetes.io/unschedulable taint mention the word too, and
            # a controller's update (PUT) of a cordoned Node carries the whole spec.
            if (
                event.get("verb") != "patch"
                or ref.get("resource") != "nodes"
                or ref.get("subresource")
                or not isinstance(spec, dict)
                or "unschedulable" not in spec
            ):
                continue
            state = "cordon" if spec["unschedulable"] else "uncordon"
            out.append(f"{state} {ref.get('name', '')}")
        return out

    def reset_stats(self) -> None:
        self.threaded.call(self.world.hcloud.stats.reset)

    def mutating(self) -> int:
        """Mutating Hetzner API requests since ``reset_stats``."""
        return int(self.threaded.call(lambda: self.world.hcloud.stats.mutating))
