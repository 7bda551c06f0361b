"""Addons install concurrently: every Helm Job is applied and waited for at the same time, and
one failing addon neither hides nor abandons the others."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from controller_support import TOKEN, cluster
from hk8s.controller._addons import enabled_addons, install_addons
from hk8s.controller._waits import Waiter
from hk8s.errors import OperationsFailedError
from hk8s.model import ManualClock, Timing
from hk8s.providers.k8s import JobFailedError, ObjectRef

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hk8s.controller._report import ProgressEvent


class SlowJobs:
    """Jobs that finish only once every addon's Job has been applied: installing one addon
    after another fails at the first wait."""

    def __init__(self, expected: int, failing: Iterable[str] = ()) -> None:
        self.expected = expected
        self.failing = set(failing)
        self.jobs: list[str] = []
        self.all_applied = asyncio.Event()
        self.rollouts: list[str] = []

    async def apply(
        self, objects: Iterable[Mapping[str, Any]], *, field_manager: str = "hk8s"
    ) -> list[ObjectRef]:
        objects = list(objects)
        self.jobs += [o["metadata"]["name"] for o in objects if o["kind"] == "Job"]
        if len(self.jobs) == self.expected:
            self.all_applied.set()
        return [ObjectRef.of(dict(o)) for o in objects]

    async def retry_failed_job(self, namespace: str, name: str) -> bool:
        return False  # no Job failed in an earlier run

    async def wait_job(self, namespace: str, name: str, *, timeout: float | None = None) -> None:
        for _ in range(10 * self.expected):  # let the other installs run up to their waits
            if self.all_applied.is_set():
                break
            await asyncio.sleep(0)
        assert self.all_applied.is_set(), f"{name} waited for alone: addons ran one by one"
        if any(name.startswith(f"hk8s-{f}-") for f in self.failing):
            raise JobFailedError(namespace, name, "BackoffLimitExceeded", "Error: boom")

    async def wait_rollout(
        self, kind: str, namespace: str, name: str, *, timeout: float | None = None
    ) -> None:
        self.rollouts.append(name)


class Events:
    def __init__(self) -> None:
        self.seen: list[ProgressEvent] = []

    def emit(self, event: ProgressEvent) -> None:
        self.seen.append(event)


async def test_every_addon_job_runs_at_the_same_time() -> None:
    config = cluster(cp=1)
    names = enabled_addons(config)
    kube = SlowJobs(expected=len(names))
    installed = await install_addons(
        kube,  # type: ignore[arg-type]
        config,
        Waiter(ManualClock(), Timing()),
        token=TOKEN,
        network_id=7,
    )
    assert installed == names and len(names) == 4
    assert {"cilium", "cilium-operator", "hcloud-csi-controller"} <= set(kube.rollouts)


async def test_a_failed_addon_is_reported_after_the_others_finished() -> None:
    config = cluster(cp=1)
    names = enabled_addons(config)
    kube = SlowJobs(expected=len(names), failing=["metrics-server"])
    events = Events()
    with pytest.raises(JobFailedError, match="Error: boom"):
        await install_addons(
            kube,  # type: ignore[arg-type]
            config,
            Waiter(ManualClock(), Timing(), events),
            token=TOKEN,
            network_id=7,
        )
    done = {e.key for e in events.seen if e.kind == "done"}
    assert {"addon/cilium", "addon/hcloud_ccm", "addon/hcloud_csi"} <= done
    assert "addon/metrics_server" not in done


async def test_several_failed_addons_are_all_named() -> None:
    config = cluster(cp=1)
    names = enabled_addons(config)
    kube = SlowJobs(expected=len(names), failing=["metrics-server", "hcloud-csi"])
    with pytest.raises(OperationsFailedError) as info:
        await install_addons(
            kube,  # type: ignore[arg-type]
            config,
            Waiter(ManualClock(), Timing()),
            token=TOKEN,
            network_id=7,
        )
    text = str(info.value)
    assert "metrics-server" in text and "hcloud-csi" in text
