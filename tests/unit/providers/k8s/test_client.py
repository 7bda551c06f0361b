"""KubeClient on the wire: request shapes, kubeconfig handling, error translation, retries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml

from hk8s.errors import AuthError, Hk8sError, PermanentError, UnavailableError, WaitTimeoutError
from hk8s.model import ManualClock, Timing
from hk8s.providers.k8s import JobFailedError, KubeClient, ObjectRef, RedactedStr
from hk8s.sim._http import HTTPServer, Response

from .conftest import Scripted

TIMING = Timing(retry_initial=1.0, retry_attempts=3, cluster_poll_interval=5.0)


def client(api: Any, clock: ManualClock | None = None, **kwargs: Any) -> KubeClient:
    return KubeClient.from_kubeconfig(
        api.kubeconfig(), clock=clock or ManualClock(), timing=TIMING, **kwargs
    )


async def test_apply_is_server_side_apply_with_force_and_returns_refs_only(api: Any) -> None:
    path = "/api/v1/namespaces/kube-system/secrets/hcloud"
    api.json("PATCH", path, {"kind": "Secret", "data": {"token": "c2VjcmV0"}})
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hcloud", "namespace": "kube-system"},
        "stringData": {"token": RedactedStr("the-token")},
    }
    kube = client(api)
    refs = await kube.apply([secret])
    await kube.close()
    assert refs == [ObjectRef("v1", "Secret", "hcloud", "kube-system")]
    [request] = api.requests
    assert (request.method, request.path) == ("PATCH", path)
    assert request.query == {"fieldManager": ["hk8s"], "force": ["true"]}
    assert request.headers.get_header("content-type") == "application/apply-patch+yaml"
    assert request.headers.get_header("authorization") == "Bearer s3cret-bearer"
    assert json.loads(request.body)["stringData"]["token"] == "the-token"


async def test_paths_cover_cluster_scoped_grouped_and_discovered_kinds(api: Any) -> None:
    api.json("PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/hk8s-helm", {})
    api.json("PATCH", "/apis/batch/v1/namespaces/kube-system/jobs/j", {})
    api.json(
        "GET",
        "/apis/example.com/v1",
        {"resources": [{"name": "widgets/status", "kind": "Widget", "namespaced": True},
                       {"name": "widgets", "kind": "Widget", "namespaced": True}]},
    )  # fmt: skip
    api.json("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w", {})
    kube = client(api)
    await kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "hk8s-helm"},
            },
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "j", "namespace": "kube-system"},
            },
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        ]
    )
    await kube.close()
    assert [r.path for r in api.requests if r.method == "PATCH"] == [
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/hk8s-helm",
        "/apis/batch/v1/namespaces/kube-system/jobs/j",
        "/apis/example.com/v1/namespaces/default/widgets/w",
    ]


async def test_port_map_rewrites_the_kubeconfig_server(api: Any) -> None:
    config = api.kubeconfig()
    port = api.server.port
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:6443"
    api.json("GET", "/api/v1/nodes", {"items": []})
    kube = KubeClient.from_kubeconfig(
        config, clock=ManualClock(), timing=TIMING, environ={"HK8S_PORT_MAP": f"6443={port}"}
    )
    assert await kube.list_nodes() == []
    await kube.close()


async def test_kubeconfig_file_is_read_without_touching_global_config(
    api: Any, tmp_path: Any
) -> None:
    from kubernetes.client import Configuration

    before = Configuration.get_default_copy().host
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(api.kubeconfig()))
    api.json("GET", "/api/v1/namespaces/kube-system/configmaps/x", {"data": {"a": "b"}})
    kube = KubeClient.from_kubeconfig(path, clock=ManualClock(), timing=TIMING)
    assert await kube.get("v1", "ConfigMap", "x", namespace="kube-system") == {"data": {"a": "b"}}
    await kube.close()
    assert Configuration.get_default_copy().host == before


async def test_kubeconfig_text_as_talos_returns_it(api: Any) -> None:
    api.json("GET", "/api/v1/nodes", {"items": []})
    text = yaml.safe_dump(api.kubeconfig())
    kube = KubeClient.from_kubeconfig_text(text, clock=ManualClock(), timing=TIMING)
    assert await kube.list_nodes() == []
    await kube.close()


async def test_bad_kubeconfig_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(PermanentError, match="kubeconfig"):
        KubeClient.from_kubeconfig(
            {"apiVersion": "v1", "kind": "Config"}, clock=ManualClock(), timing=TIMING
        )
    with pytest.raises(PermanentError, match="kubeconfig"):
        KubeClient.from_kubeconfig_text("- a list", clock=ManualClock(), timing=TIMING)
    with pytest.raises(PermanentError, match="kubeconfig"):
        KubeClient.from_kubeconfig(tmp_path / "missing", clock=ManualClock(), timing=TIMING)


async def test_errors_are_translated(api: Any) -> None:
    api.on("GET", "/api/v1/nodes", api.failure(401, "Unauthorized"))
    api.on("DELETE", "/api/v1/nodes/gone", api.failure(404, 'nodes "gone" not found'))
    api.on("PATCH", "/api/v1/namespaces/default/configmaps/bad", api.failure(422, "invalid"))
    kube = client(api)
    with pytest.raises(AuthError, match="refused the client credentials"):
        await kube.list_nodes()
    assert await kube.delete_node("gone") is False
    assert await kube.get("v1", "Node", "gone") is None
    with pytest.raises(PermanentError, match="invalid"):
        await kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}}])
    await kube.close()


async def test_transient_errors_are_retried_with_backoff_and_retry_after(api: Any) -> None:
    throttled = api.failure(429, "too many requests")
    throttled.headers["Retry-After"] = "7"
    api.on(
        "GET",
        "/api/v1/nodes",
        api.failure(503, "etcd leader changed"),
        throttled,
        Response.json({"items": []}),
    )
    clock = ManualClock()
    kube = client(api, clock)
    assert await kube.list_nodes() == []
    await kube.close()
    assert clock.slept == [1.0, 7.0]


async def test_unreachable_api_is_unavailable_after_retries(api: Any) -> None:
    clock = ManualClock()
    kube = client(api, clock)
    await api.server.close()
    with pytest.raises(UnavailableError, match="not reachable"):
        await kube.list_nodes()
    await kube.close()
    assert clock.slept == [1.0, 2.0]


async def test_list_nodes_without_retry_tries_once(api: Any) -> None:
    api.on("GET", "/api/v1/nodes", api.failure(503, "etcd not ready"), Response.json({"items": []}))
    clock = ManualClock()
    kube = client(api, clock)
    with pytest.raises(Hk8sError, match="etcd not ready") as info:
        await kube.list_nodes(retry=False)
    await kube.close()
    assert info.value.retryable  # the caller decides what an API that is not up means
    assert clock.slept == [] and len(api.requests) == 1


async def test_uncordon_removes_unschedulable_and_only_the_named_annotation(api: Any) -> None:
    api.json("PATCH", "/api/v1/nodes/demo-w-1", {"kind": "Node"})
    kube = client(api)
    await kube.uncordon("demo-w-1")
    await kube.uncordon("demo-w-1", annotation="hk8s/upgrading")
    await kube.close()
    plain, marked = api.requests
    assert plain.headers.get_header("content-type") == "application/merge-patch+json"
    # null deletes the key (RFC 7386): kubectl uncordon leaves the field unset, i.e. false
    assert json.loads(plain.body) == {"spec": {"unschedulable": None}}
    assert json.loads(marked.body) == {
        "spec": {"unschedulable": None},
        "metadata": {"annotations": {"hk8s/upgrading": None}},
    }


def _node(boot: str, ready: bool, *taints: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo-cp-1"},
        "spec": {"taints": [{"key": t, "effect": "NoExecute"} for t in taints]},
        "status": {
            "nodeInfo": {"bootID": boot},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


async def test_nodes_ready_after_a_reboot_means_the_new_boots_kubelet_and_no_taints(
    api: Any,
) -> None:
    # A single control plane's API server goes down with it: the Ready condition it posted
    # before the reboot is still there when the API answers again.
    stale = _node("b1", True)
    states = [stale, _node("b2", False), _node("b2", True, "node.kubernetes.io/not-ready")]
    api.on("GET", "/api/v1/nodes", *(Response.json({"items": [n]}) for n in states),
           Response.json({"items": [_node("b2", True)]}))  # fmt: skip
    clock = ManualClock()
    kube = client(api, clock)
    nodes = await kube.wait_nodes_ready(["demo-cp-1"], booted_since={"demo-cp-1": "b1"})
    assert [n.boot_id for n in nodes] == ["b2"] and nodes[0].in_service
    assert len(clock.slept) == 3  # stale, not Ready, tainted
    api.json("GET", "/api/v1/nodes", {"items": [stale]})
    with pytest.raises(WaitTimeoutError, match="kubelet not back since the reboot: demo-cp-1"):
        await kube.wait_nodes_ready(["demo-cp-1"], booted_since={"demo-cp-1": "b1"}, timeout=10)
    assert await kube.wait_nodes_ready(["demo-cp-1"])  # no reboot: Ready is Ready
    # A bootID not known before the reboot (the API did not answer): Ready is all there is.
    assert await kube.wait_nodes_ready(["demo-cp-1"], booted_since={"demo-cp-1": None})
    await kube.close()


async def test_a_wait_lists_once_then_judges_each_change_its_watch_sends(api: Any) -> None:
    # kubectl wait's way: a change is seen when the API server sends it, not a poll later,
    # and costs no request of its own; a version the server has forgotten means a new list.
    stale, back = _node("b1", True), _node("b2", True)
    api.on("GET", "/api/v1/nodes",
           *(Response.json({"metadata": {"resourceVersion": v}, "items": [stale]})
             for v in ("41", "57")))  # fmt: skip
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    api.on("WATCH", "/api/v1/nodes", Response.json(gone),
           Response.json({"type": "MODIFIED", "object": back}))  # fmt: skip
    clock = ManualClock()
    kube = client(api, clock)
    [node] = await kube.wait_nodes_ready(["demo-cp-1"], booted_since={"demo-cp-1": "b1"})
    await kube.close()
    assert node.boot_id == "b2"
    watches = [r for r in api.requests if r.param("watch") == "1"]
    lists = [r for r in api.requests if r.param("watch") is None]
    assert [w.param("resourceVersion") for w in watches] == ["41", "57"]  # each from its list
    assert len(lists) == 2  # the first, and the one after 410 Gone: none for the change
    assert {w.param("fieldSelector") for w in watches} == {"metadata.name=demo-cp-1"}
    assert watches[0].param("timeoutSeconds") == "150"  # WATCH_SPAN poll intervals at most
    assert clock.slept == [0.5]  # a tenth of a poll interval before the new list, no poll


async def test_a_cancelled_watch_ends_at_once() -> None:
    # A wait given up (Ctrl-C, another node's failure) must not hold the process for the
    # watch's timeout: its connection goes with the task.
    entered, closed = asyncio.Event(), asyncio.Event()

    async def silent(request: Any) -> Response:
        entered.set()
        try:
            await asyncio.Event().wait()  # a watch with no event for minutes
        finally:
            closed.set()
        raise AssertionError("unreachable")

    server = await HTTPServer(silent).start("127.0.0.1", 0)
    kube = client(type("Api", (), {"server": server, "kubeconfig": Scripted.kubeconfig})())

    async def first_event() -> Any:
        async for event in kube.watch("/api/v1/nodes", "41", 600):
            return event
        return None

    watch = asyncio.create_task(first_event())
    await entered.wait()
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch
    await kube.close()
    await server.close()
    assert closed.is_set()


async def test_wait_api_ready_times_out_naming_the_condition(api: Any) -> None:
    api.on("GET", "/readyz", api.failure(503, "etcd not ready"))
    clock = ManualClock()
    kube = client(api, clock)
    with pytest.raises(WaitTimeoutError, match="Kubernetes API") as info:
        await kube.wait_api_ready(timeout=30)
    await kube.close()
    assert "etcd not ready" in str(info.value)
    assert clock.now() == pytest.approx(30)


def failed_job(api: Scripted) -> None:
    """The Job hk8s-cilium-1 has failed; its pods p2 and p1 (listed newest first)."""
    api.json(
        "GET",
        "/apis/batch/v1/namespaces/kube-system/jobs",
        {"items": [{"status": {"failed": 2, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]}}]},
    )  # fmt: skip
    api.json(
        "GET",
        "/api/v1/namespaces/kube-system/pods",
        {"items": [{"metadata": {"name": "p2", "creationTimestamp": "2026-01-01T00:00:02Z"}},
                   {"metadata": {"name": "p1", "creationTimestamp": "2026-01-01T00:00:01Z"}}]},
    )  # fmt: skip


async def test_failed_job_surfaces_its_pod_logs(api: Any) -> None:
    failed_job(api)
    for pod in ("p1", "p2"):
        api.on(
            "GET",
            f"/api/v1/namespaces/kube-system/pods/{pod}/log",
            Response.text(f'Error: chart "cilium" version "9.9.9" not found ({pod})\n'),
        )
    kube = client(api)
    with pytest.raises(JobFailedError) as info:
        await kube.wait_job("kube-system", "hk8s-cilium-1")
    await kube.close()
    text = str(info.value)
    assert "backoff limit" in text and 'version "9.9.9" not found (p1)' in text
    assert text.index("(p1)") < text.index("(p2)")
    pods_query = next(r for r in api.requests if r.path.endswith("/pods"))
    assert pods_query.query["labelSelector"] == ["job-name=hk8s-cilium-1"]


async def test_a_failed_job_is_reported_at_once_when_a_pods_kubelet_is_unreachable(
    api: Any,
) -> None:
    """The API server reads a log from the node's kubelet; an unreachable one answers 500.
    The logs explain the failure, so they get one attempt: retried like other requests, the
    error reached the user about 90 s late (seen against the real kube-apiserver)."""
    failed_job(api)
    unreachable = 'Get "https://10.0.1.3:10250/containerLogs/kube-system/p1/helm": i/o timeout'
    api.on("GET", "/api/v1/namespaces/kube-system/pods/p1/log", api.failure(500, unreachable))
    api.on(
        "GET",
        "/api/v1/namespaces/kube-system/pods/p2/log",
        Response.text("Error: INSTALLATION FAILED: boom\n"),
    )
    clock = ManualClock()
    kube = client(api, clock)
    with pytest.raises(JobFailedError) as info:
        await kube.wait_job("kube-system", "hk8s-cilium-1")
    await kube.close()
    text = str(info.value)
    assert "[p1] (logs unavailable:" in text and "i/o timeout" in text
    assert "[p2]\nError: INSTALLATION FAILED: boom" in text
    assert clock.slept == []
    assert [r.path for r in api.requests].count("/api/v1/namespaces/kube-system/pods/p1/log") == 1


async def test_a_failed_jobs_pod_logs_are_read_side_by_side() -> None:
    """A kubelet that does not answer costs one request timeout, not one per pod: each log
    read here is answered only once the other one has arrived too (or after 2 s, too late)."""
    scripted = Scripted()
    failed_job(scripted)
    arrived: set[str] = set()
    both = asyncio.Event()

    async def handle(request: Any) -> Response:
        if not request.path.endswith("/log"):
            return await scripted.handle(request)
        pod_name = request.path.split("/")[-2]
        arrived.add(pod_name)
        if len(arrived) == 2:
            both.set()
        try:
            await asyncio.wait_for(both.wait(), 2)
        except TimeoutError:
            return scripted.failure(504, f"{pod_name} was read alone")
        return Response.text(f"log of {pod_name}\n")

    scripted.server = await HTTPServer(handle).start("127.0.0.1", 0)
    kube = client(scripted)
    try:
        with pytest.raises(JobFailedError) as info:
            await kube.wait_job("kube-system", "hk8s-cilium-1")
    finally:
        await kube.close()
        await scripted.server.close()
    assert "[p1]\nlog of p1\n[p2]\nlog of p2" in str(info.value)


def pod(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "app", "uid": f"uid-{name}",
                     "labels": {"app": "web"}, **meta},
        "spec": {"nodeName": "demo-w-1"},
    }  # fmt: skip


async def test_drain_skips_daemonset_and_mirror_pods_and_waits_out_a_pdb(api: Any) -> None:
    api.json("PATCH", "/api/v1/nodes/demo-w-1", {})
    pods = [
        pod("web-1"),
        pod("agent", ownerReferences=[{"kind": "DaemonSet", "name": "cilium"}]),
        pod("static", annotations={"kubernetes.io/config.mirror": "x"}),
    ]
    api.on(
        "GET",
        "/api/v1/pods",
        Response.json({"items": pods}),
        Response.json({"items": pods[1:]}),
    )
    blocked = api.failure(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={"causes": [{"reason": "DisruptionBudget",
                             "message": "The disruption budget web needs 1 healthy pods"}]},
    )  # fmt: skip
    api.on(
        "POST",
        "/api/v1/namespaces/app/pods/web-1/eviction",
        blocked,
        blocked,
        Response.json({"kind": "Status", "status": "Success"}, status=201),
    )
    clock = ManualClock()
    kube = client(api, clock)
    evicted = await kube.drain("demo-w-1", timeout=300)
    await kube.close()
    assert evicted == [ObjectRef("v1", "Pod", "web-1", "app")]
    cordon = api.requests[0]
    assert cordon.method == "PATCH" and json.loads(cordon.body) == {"spec": {"unschedulable": True}}
    assert cordon.headers.get_header("content-type") == "application/merge-patch+json"
    evictions = [r for r in api.requests if r.path.endswith("/eviction")]
    assert len(evictions) == 3 and clock.slept == [5.0, 5.0]
    assert json.loads(evictions[0].body)["kind"] == "Eviction"
    assert api.requests[1].query["fieldSelector"] == ["spec.nodeName=demo-w-1"]


def pdb(name: str, selector: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": selector}}


async def test_drain_blocked_past_its_deadline_names_pod_and_budget(api: Any) -> None:
    api.json("PATCH", "/api/v1/nodes/demo-w-1", {})
    api.json("GET", "/api/v1/pods", {"items": [pod("web-1")]})
    api.on("POST", "/api/v1/namespaces/app/pods/web-1/eviction", api.failure(429, "Too many"))
    api.json(
        "GET",
        "/apis/policy/v1/namespaces/app/poddisruptionbudgets",
        {"items": [pdb("other", {"matchLabels": {"app": "db"}}),
                   pdb("web-pdb", {"matchExpressions": [
                       {"key": "app", "operator": "In", "values": ["web"]}]})]},
    )  # fmt: skip
    kube = client(api)
    with pytest.raises(WaitTimeoutError) as info:
        await kube.drain("demo-w-1", timeout=60)
    await kube.close()
    assert "draining node demo-w-1" in str(info.value)
    assert "pod app/web-1 blocked by PodDisruptionBudget app/web-pdb" in str(info.value)


async def test_rollout_waits_for_old_replicas_and_names_what_it_saw(api: Any) -> None:
    path = "/apis/apps/v1/namespaces/kube-system/deployments"
    rolling = {
        "metadata": {"name": "metrics-server", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
                   "availableReplicas": 2},
    }  # fmt: skip
    done = {**rolling, "status": {**rolling["status"], "replicas": 2}}
    api.on("GET", path, *(Response.json({"items": [d]}) for d in (rolling, rolling, done)))
    clock = ManualClock()
    kube = client(api, clock)
    await kube.wait_rollout("Deployment", "kube-system", "metrics-server", timeout=60)
    assert clock.slept == [5.0, 5.0]  # no watch served: polled
    assert api.requests[0].query["fieldSelector"] == ["metadata.name=metrics-server"]
    api.json("GET", path, {"items": [rolling]})
    with pytest.raises(WaitTimeoutError, match="1 old replicas terminating"):
        await kube.wait_rollout("Deployment", "kube-system", "metrics-server", timeout=20)
    daemonset = "/apis/apps/v1/namespaces/kube-system/daemonsets"
    api.json(
        "GET",
        daemonset,
        {"items": [{"status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                               "numberAvailable": 2}}]},
    )  # fmt: skip
    with pytest.raises(WaitTimeoutError, match="2/3 pods available"):
        await kube.wait_rollout("DaemonSet", "kube-system", "cilium", timeout=20)
    await kube.close()


async def test_every_request_has_a_timeout(api: Any) -> None:
    never = asyncio.Event()

    async def hang(request: Any) -> Response:
        await never.wait()
        return Response.json({})

    silent = await HTTPServer(hang).start("127.0.0.1", 0)
    config = api.kubeconfig()
    config["clusters"][0]["cluster"]["server"] = silent.url
    timing = Timing(request_timeout=2.0, retry_attempts=1)
    kube = KubeClient.from_kubeconfig(config, clock=ManualClock(), timing=timing)
    with pytest.raises(UnavailableError, match="timed out"):
        await kube.list_nodes()  # 2 s of wall time: the floor for a request timeout
    await kube.close()
    await silent.close()
