"""The kubelets of one cluster's simulated machines, as one set of API clients.

Like kwok, one process plays every node's kubelet against the real API server: it watches
pods and nodes, runs the pods the scheduler bound to a node whose machine is up (Pending ->
Running after ``pod_start`` clock seconds; Job pods then end ``Succeeded`` or ``Failed``;
helm installer pods run ``_helm``; Job pods of an image the world plays run its program,
``_programs``), serves their logs through each node's kubelet API,
completes graceful deletions, keeps each Node's ``Ready`` condition and Lease, and writes the
mirror pods of a control plane's static pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.sim.k8s import ApiError
from hk8s.sim.machines import _nodes
from hk8s.sim.machines._api import Informer
from hk8s.sim.machines._charts import CRASH_ANNOTATION
from hk8s.sim.machines._helm import HelmError, HelmFaults, helm_argv, release_name, run_helm
from hk8s.sim.machines._joblog import echo_output
from hk8s.sim.machines._kubeletapi import KubeletServer
from hk8s.sim.machines._pods import (
    conditions,
    container_statuses,
    exit_status,
    missing_reference,
    timestamp,
)
from hk8s.sim.machines._programs import pod_run, program_for

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from hk8s.model import Clock
    from hk8s.pki import CertAndKey
    from hk8s.sim.k8s import KubeClient
    from hk8s.sim.machines._api import Resources
    from hk8s.sim.machines._ccm import CloudNodes
    from hk8s.sim.machines._helmbin import RealHelm
    from hk8s.sim.machines._programs import Program

__all__ = ["Kubelets", "Timings"]

Obj = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger(__name__)
_VOLATILE = ("lastTransitionTime", "lastHeartbeatTime", "lastProbeTime", "startedAt",
             "finishedAt", "startTime")  # fmt: skip
_STATIC = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Timings:
    """Clock seconds each step takes (scaled with the world), and the Lease renewal period
    in clock seconds (the world sets it so that renewals come every few wall seconds, well
    inside kube-controller-manager's wall-clock node-monitor grace period)."""

    pod_start: float = 3.0
    job_run: float = 8.0
    helm_run: float = 15.0
    crash_backoff: float = 10.0
    lease_renew: float = 10.0
    max_wait: float = 5.0


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


class Kubelets:
    def __init__(
        self,
        api: KubeClient,
        resources: Resources,
        clock: Clock,
        ca: CertAndKey,
        *,
        timings: Timings,
        faults: HelmFaults,
        cloud: CloudNodes,
        programs: dict[str, Program] | None = None,
        helm: RealHelm | None = None,
    ) -> None:
        self.api, self.resources, self.clock, self.ca = api, resources, clock, ca
        self.timings, self.faults, self.cloud = timings, faults, cloud
        self.helm = helm  # runs the helm installer pods of the charts it has (_helmbin)
        # Images (by repository) the world plays as programs; their runs by pod uid.
        self.programs: dict[str, Program] = dict(programs or {})
        self._program_runs: dict[str, asyncio.Task[tuple[int, str]]] = {}
        self.nodes: dict[str, _nodes.NodeState] = {}
        self.changed = asyncio.Event()
        self.pods = Informer(api, "/api/v1/pods", self.changed)
        self.node_objects = Informer(api, "/api/v1/nodes", self.changed)
        self.logs: dict[tuple[str, str, str], str] = {}
        self._started: dict[str, float] = {}  # pod uid -> clock time its start began
        self._running: dict[str, float] = {}  # pod uid -> clock time it began running
        self._deleting: set[str] = set()

    # -- the machines' side (Talos hooks) ---------------------------------------------------
    async def register(self, node: _nodes.KubeletNode) -> None:
        state = self.nodes.get(node.name)
        if state is None or state.node != node:
            old_server = state.server if state else None
            state = _nodes.NodeState(node)
            state.server = old_server
            self.nodes[node.name] = state
        state.up, state.posted = True, None
        state.boot_id = _nodes.new_boot_id()  # each registration follows a boot
        await _nodes.register(self.api, state)
        await _nodes.renew_lease(self.api, node.name, None)
        if state.server is None or not state.server.serving:
            state.server = KubeletServer(self.ca, node.external_ip, node.name, self._log)
            await state.server.start()
        if node.control_plane:
            await self._mirror_pods(node)
        self.changed.set()

    async def stop(self, name: str) -> None:
        """The machine goes down (reboot, power off): kubelet's last status, then silence."""
        state = self.nodes.get(name)
        if state is None or not state.up:
            return
        state.up = False
        if state.server is not None:
            await state.server.close()
        with contextlib.suppress(ApiError, OSError):
            await _nodes.post_ready(
                self.api, state, ("False", "KubeletNotReady", _nodes.SHUTDOWN_MESSAGE)
            )

    async def remove(self, name: str) -> None:
        """The machine is gone for good (reset, deleted): its Node goes too."""
        await self.stop(name)
        self.nodes.pop(name, None)
        await self.api.delete(f"/api/v1/nodes/{name}")

    async def close(self) -> None:
        runs = list(self._program_runs.values())
        self._program_runs.clear()
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for state in self.nodes.values():
            if state.server is not None:
                await state.server.close()

    def _log(self, ns: str, pod: str, container: str) -> str | None:
        return self.logs.get((ns, pod, container))

    # -- the loops --------------------------------------------------------------------------
    async def run(self) -> None:
        await asyncio.gather(
            self.pods.run(), self.node_objects.run(), self._leases(), self._reconcile_loop()
        )

    async def _leases(self) -> None:
        while True:
            await self.clock.sleep(self.timings.lease_renew)
            uids = {
                o["metadata"]["name"]: o["metadata"].get("uid")
                for o in self.node_objects.items.values()
            }
            up = [s.node.name for s in self.nodes.values() if s.up]
            results = await asyncio.gather(
                *(_nodes.renew_lease(self.api, n, uids.get(n)) for n in up),
                return_exceptions=True,
            )
            for name, result in zip(up, results, strict=True):
                if isinstance(result, Exception):
                    log.debug("lease of %s not renewed: %r", name, result)

    async def _reconcile_loop(self) -> None:
        await self.pods.synced.wait()
        await self.node_objects.synced.wait()
        while True:
            self.changed.clear()
            try:
                wait = await self.reconcile()
            except (ApiError, OSError, TimeoutError) as exc:
                log.debug("kubelets' pass failed: %r", exc)
                wait = 0.5
            except Exception:
                log.exception("kubelets' pass failed")
                wait = 1.0
            waiter = asyncio.ensure_future(self.changed.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(max(wait, 0.01)))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()
                await asyncio.gather(waiter, sleeper, return_exceptions=True)

    async def reconcile(self) -> float:
        """One pass; returns the clock seconds until a timer falls due."""
        pods = list(self.pods.items.values())
        nodes = list(self.node_objects.items.values())
        cni = {
            p["spec"]["nodeName"]
            for p in pods
            if (p["metadata"].get("labels") or {}).get("k8s-app") == "cilium"
            and p["metadata"].get("namespace") == "kube-system"
            and _ready(p)
            and p["spec"].get("nodeName")
        }
        present = {n["metadata"]["name"] for n in nodes}
        posts = []
        for name, state in list(self.nodes.items()):
            if state.up and name in present:
                ready = (
                    ("True", "KubeletReady", "kubelet is posting ready status")
                    if name in cni
                    else ("False", "KubeletNotReady", _nodes.CNI_MESSAGE)
                )
                if state.posted != ready:
                    posts.append(_nodes.post_ready(self.api, state, ready))
        await _bounded(posts)
        await _bounded(
            [
                self._mirror_pods(state.node)
                for name, state in self.nodes.items()
                if state.up
                and state.node.control_plane
                and name in present
                and self._mirrors_missing(state.node)
            ]
        )
        work = []
        for pod in pods:
            runs_on = self.nodes.get(pod["spec"].get("nodeName") or "")
            if runs_on is not None and runs_on.up:
                work.append(self._pod(pod, runs_on, cni))
        waits = [w for w in await _bounded(work) if w is not None]
        await self.cloud.reconcile(nodes, pods)
        return min([self.timings.max_wait, *waits])

    # -- one pod ----------------------------------------------------------------------------
    async def _pod(self, pod: Obj, state: _nodes.NodeState, cni: set[str]) -> float | None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        if meta.get("deletionTimestamp"):
            # The containers are stopped: kubelet confirms the deletion (grace period 0).
            if uid not in self._deleting:
                self._deleting.add(uid)
                await self.api.delete(path, gracePeriodSeconds="0")
            return None
        status = dict(pod.get("status") or {})
        phase = status.get("phase")
        if phase in ("Succeeded", "Failed"):
            return None
        now, stamp = self.clock.now(), timestamp()
        node = state.node
        host_network = bool(spec.get("hostNetwork"))
        status.setdefault("hostIP", node.internal_ip)
        status.setdefault("hostIPs", [{"ip": node.internal_ip}])
        status.setdefault("startTime", stamp)
        blocked = None if host_network or node.name in cni else ("ContainerCreating", "")
        if blocked is None and phase != "Running":
            blocked = await missing_reference(self.api, pod)
        if blocked is not None and phase != "Running":
            self._started.pop(uid, None)
            reason, message = blocked
            waiting = {"reason": reason, **({"message": message} if message else {})}
            status["phase"] = "Pending"
            status["containerStatuses"] = container_statuses(pod, {"waiting": waiting}, False)
            status["conditions"] = conditions(False, stamp, "ContainersNotReady")
            await self._write(pod, status)
            return None
        began = self._started.setdefault(uid, now)
        if phase != "Running" and now - began < self.timings.pod_start:
            return self.timings.pod_start - (now - began)
        return await self._run(pod, status, state, now, stamp)

    def _pod_ip(self, state: _nodes.NodeState) -> str:
        """The next address of the node's pod CIDR (allocated by kube-controller-manager)."""
        import ipaddress

        node = self.node_objects.items.get(f"/{state.node.name}") or {}
        cidr = (node.get("spec") or {}).get("podCIDR") or "10.244.0.0/24"
        network = ipaddress.ip_network(cidr, strict=False)
        state.pod_ips += 1
        return str(network[1 + state.pod_ips % (network.num_addresses - 2)])

    async def _run(
        self, pod: Obj, status: Obj, state: _nodes.NodeState, now: float, stamp: str
    ) -> float | None:
        meta, spec = pod["metadata"], pod["spec"]
        uid, ns, name = meta["uid"], meta["namespace"], meta["name"]
        since = self._running.setdefault(uid, now)
        ip = (
            state.node.internal_ip
            if spec.get("hostNetwork")
            else status.get("podIP") or self._pod_ip(state)
        )
        status.update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]})
        first = spec["containers"][0]["name"]
        crash = (meta.get("annotations") or {}).get(CRASH_ANNOTATION)
        if crash:
            restarts = int((now - since) // self.timings.crash_backoff)
            self.logs[(ns, name, first)] = crash + "\n"
            waiting = {
                "reason": "CrashLoopBackOff",
                "message": f"back-off restarting failed container {first} in pod {name}",
            }
            status["containerStatuses"] = container_statuses(
                pod, {"waiting": waiting}, False, restarts
            )
            status["conditions"] = conditions(False, stamp, "ContainersNotReady")
            await self._write(pod, status)
            return self.timings.crash_backoff
        owners = {r.get("kind") for r in meta.get("ownerReferences") or []}
        wait: float | None = None
        program = program_for(self.programs, pod) if "Job" in owners else None
        if program is not None:
            self.logs.setdefault((ns, name, first), "")
            run = self._program_runs.get(uid)
            if run is None:
                run = asyncio.ensure_future(program(await pod_run(self.api, pod)))
                run.add_done_callback(lambda _: self.changed.set())
                self._program_runs[uid] = run
            elif run.done():
                del self._program_runs[uid]
                try:
                    result = run.result()
                except Exception as exc:  # a program's bug is the container's crash
                    result = (2, f"panic: {exc}\n")
                await self._finish(pod, status, None, stamp, result=result)
                return None
        elif "Job" in owners:
            self.logs.setdefault((ns, name, first), "")
            args = helm_argv(pod)
            duration = self.timings.job_run
            if args is not None:
                release = release_name(args) or ""
                duration = self.timings.helm_run + self.faults.slow_releases.get(release, 0.0)
            if now - since >= duration:
                await self._finish(pod, status, args, stamp)
                return None
            wait = duration - (now - since)
        else:
            for container in spec["containers"]:
                self.logs.setdefault((ns, name, container["name"]), f"{stamp} started\n")
        prior = (status.get("containerStatuses") or [{}])[0].get("state") or {}
        running = prior if "running" in prior else {"running": {"startedAt": stamp}}
        status["containerStatuses"] = container_statuses(pod, running, True)
        status["conditions"] = conditions(True, stamp)
        await self._write(pod, status)
        return wait

    async def _finish(
        self,
        pod: Obj,
        status: Obj,
        args: list[str] | None,
        stamp: str,
        *,
        result: tuple[int, str] | None = None,
    ) -> None:
        meta = pod["metadata"]
        first = pod["spec"]["containers"][0]["name"]
        code, output = 0, ""
        if result is not None:
            code, output = result
        elif args is not None:
            try:
                output = await run_helm(self.resources, pod, args, self.faults, stamp, self.helm)
            except HelmError as exc:
                code, output = 1, exc.log or f"Error: {exc}\n"
            except ApiError as exc:
                code, output = 1, f"Error: {exc.message}\n"
        else:
            code = exit_status(pod["spec"]["containers"][0])
            output = echo_output(pod["spec"]["containers"][0])
        self.logs[(meta["namespace"], meta["name"], first)] = output
        prior = (status.get("containerStatuses") or [{}])[0].get("state") or {}
        started = prior.get("running", {}).get("startedAt", stamp)
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": stamp,
        }
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        status["containerStatuses"] = container_statuses(pod, {"terminated": terminated}, False)
        status["conditions"] = conditions(
            False, stamp, "PodCompleted" if code == 0 else "PodFailed"
        )
        await self._write(pod, status)

    async def _write(self, pod: Obj, status: Obj) -> None:
        """Write the pod's status when it differs (beyond timestamps) from what is stored,
        keeping each unchanged condition's transition time."""
        old = pod.get("status") or {}
        if _stable(old) == _stable(status):
            return
        previous = {c.get("type"): c for c in old.get("conditions") or []}
        for condition in status.get("conditions") or []:
            before = previous.get(condition.get("type"))
            if before is not None and before.get("status") == condition.get("status"):
                condition["lastTransitionTime"] = before.get("lastTransitionTime")
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            await self.api.patch(
                path,
                {"metadata": {"uid": meta["uid"]}, "status": status},
                kind="merge",
            )
        except ApiError as exc:
            if exc.code not in (404, 409, 422):
                raise
            log.debug("status of pod %s/%s not written: %s", meta["namespace"], meta["name"], exc)

    # -- mirror pods --------------------------------------------------------------------------
    def _mirrors_missing(self, node: _nodes.KubeletNode) -> bool:
        """Whether a mirror pod of the node's static pods is absent from (or outdated in) the
        API: kubelet's pod workers recreate a missing mirror pod on their next sync
        (``pkg/kubelet/kubelet.go`` ``SyncPod``: "Creating a mirror pod for static pod"), so it
        comes back after a deletion, an etcd restore or a wiped keyspace."""
        version = node.kubelet_version.lstrip("v")
        for component in _STATIC:
            pod = self.pods.items.get(f"kube-system/{component}-{node.name}")
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                return True
            if (
                pod["spec"]["containers"][0].get("image")
                != f"registry.k8s.io/{component}:v{version}"
            ):
                return True
        return False

    async def _mirror_pods(self, node: _nodes.KubeletNode) -> None:
        """Mirror pods of the node's control-plane static pods, at its Kubernetes version.

        Talos renders the static pods from the machine config's images (hk8s and ``talosctl
        gen config`` set them to the kubelet's version); when they change, the kubelet runs
        the new pods and replaces the mirrors.
        """
        node_obj = await self.api.get_or_none(f"/api/v1/nodes/{node.name}")
        if node_obj is None:
            return
        version = node.kubelet_version.lstrip("v")
        for component in _STATIC:
            pod_name = f"{component}-{node.name}"
            image = f"registry.k8s.io/{component}:v{version}"
            path = f"/api/v1/namespaces/kube-system/pods/{pod_name}"
            existing = await self.api.get_or_none(path)
            if existing is not None and existing["metadata"].get("deletionTimestamp") is None:
                if existing["spec"]["containers"][0].get("image") != image:
                    # A container's image is the one mutable part of a pod's spec.
                    patch = {"spec": {"containers": [{"name": component, "image": image}]}}
                    await self.api.patch(path, patch, kind="strategic")
                continue
            mirror = {
                "metadata": {
                    "name": pod_name,
                    "namespace": "kube-system",
                    "labels": {"k8s-app": component, "tier": "control-plane"},
                    "annotations": {
                        "kubernetes.io/config.mirror": json.dumps(image)[1:9],
                        "kubernetes.io/config.source": "file",
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Node",
                            "name": node.name,
                            "uid": node_obj["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "nodeName": node.name,
                    "hostNetwork": True,
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": component, "image": image}],
                },
            }
            try:
                await self.api.create("/api/v1/namespaces/kube-system/pods", mirror)
            except ApiError as exc:
                # 409: created meanwhile (this pass saw the cache before the watch caught up).
                level = logging.DEBUG if exc.code == 409 else logging.WARNING
                log.log(level, "mirror pod %s not created: %s", pod_name, exc)


_CONCURRENCY = 16  # requests in flight per pass: many nodes' kubelets work at once


async def _bounded(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``coros`` at most ``_CONCURRENCY`` at a time; the first error is raised after all
    have ended."""
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(coro: Coroutine[Any, Any, T]) -> T:
        async with gate:
            return await coro

    results = await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if not isinstance(r, BaseException)]


def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
