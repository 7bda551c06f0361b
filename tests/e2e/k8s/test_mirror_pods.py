"""A control plane's mirror pods stay in the API as a real kubelet keeps them: one deleted (by
a user, or absent from a restored etcd keyspace) is created again on the kubelet's next sync.
hk8s' health gate looks for them, so a restore whose snapshot lacks one must still converge."""

from __future__ import annotations

import asyncio

import pytest

from hk8s.sim.k8s import ApiError

from ._machines import machines

pytestmark = pytest.mark.e2e

_PODS = "/api/v1/namespaces/kube-system/pods"


def test_a_deleted_mirror_pod_comes_back() -> None:
    async def scenario() -> tuple[str, str]:
        async with machines({"demo-cp-1": "control-plane"}) as world:
            api = world.machines.kubelets.api
            path = f"{_PODS}/kube-apiserver-demo-cp-1"
            before = await api.get(path)
            # Removed at once, as if the keyspace never held it (grace period 0).
            await api.delete(path, gracePeriodSeconds="0")
            clock = world.machines.kubelets.clock
            for _ in range(300):  # 30 wall seconds at most
                try:
                    after = await api.get(path)
                except ApiError:
                    await clock.sleep(10)
                    continue
                return before["metadata"]["uid"], after["metadata"]["uid"]
            raise AssertionError("the mirror pod did not come back")

    old, new = asyncio.run(scenario())
    assert old != new
