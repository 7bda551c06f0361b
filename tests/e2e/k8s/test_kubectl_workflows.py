"""A user with the real kubectl on a cluster ``hk8s create`` made in the simulated world.

One cluster for the module (creating it costs most of the time), the admin kubeconfig hk8s
wrote, and the everyday kubectl workflows against it: tables, the create/apply family
(server-side apply and the migration to it), explain, scale and rollouts, waits, cordon and
drain, a Job's logs, ``top``, RBAC checks; then the cloud side: a plain ``type: LoadBalancer``
Service becomes a Hetzner load balancer in the cluster's location, a claim becomes a Hetzner
volume, and ``hk8s destroy`` leaves nothing with the cluster's or the CCM/CSI labels behind.
The tests run in file order and build on each other's objects where a user would.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from typing import TYPE_CHECKING, Any

import hcloud
import pytest

from e2e_support import WorldRun, check_ok
from hk8s.cli._main import run
from hk8s.sim.world import World
from kubectl_support import Kubectl

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

SPEED = 100.0
PAUSE = "registry.k8s.io/pause:3.10"
CLUSTER = """\
name: kc
location: nbg1
control_plane:
  count: 1
workers:
  - name: workers
    count: 2
"""


class Created(WorldRun):
    kubectl: Kubectl

    def hk8s(self, *args: str) -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([*args, "-f", str(self.config)])
        result = subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
        check_ok(result)
        return result

    def hcloud(self) -> hcloud.Client:
        return hcloud.Client(
            token=self.env["HCLOUD_TOKEN"], api_endpoint=self.env["HCLOUD_ENDPOINT"],
            poll_interval=0.05,
        )  # fmt: skip

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        return self.kubectl.ok(*args, stdin=stdin, timeout=timeout).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Created]:
    patch = pytest.MonkeyPatch()
    with World.start_in_thread(speed=SPEED) as threaded:
        for name, value in {**threaded.env, "NO_COLOR": "1"}.items():
            patch.setenv(name, value)
        created = Created(threaded, dict(threaded.env), tmp_path_factory.mktemp("kubectl"))
        created.write_dedented(CLUSTER, f"talos:\n  image_factory: {threaded.world.factory_url}\n")
        try:
            created.hk8s("create")
            created.kubectl = Kubectl(created.dir / "kubeconfig", timeout=90)
            yield created
        finally:
            patch.undo()


def rows(table: str) -> tuple[list[str], list[list[str]]]:
    header, *body = table.splitlines()
    return header.split(), [line.split() for line in body]


def test_tables_show_the_created_cluster(kc: Created) -> None:
    kc.ok("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=120s", timeout=150)
    header, nodes = rows(kc.ok("get", "nodes"))
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert sorted(n[0] for n in nodes) == ["kc-cp-1", "kc-workers-1", "kc-workers-2"]
    assert {n[1] for n in nodes} == {"Ready"}
    assert {n[0]: n[2] for n in nodes}["kc-cp-1"] == "control-plane"

    header, pods = rows(kc.ok("get", "pods", "-A"))
    assert header == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    running = {p[1].rsplit("-", 2)[0] for p in pods if p[3] == "Running"}
    for addon in ("hcloud-cloud-controller-manager", "hcloud-csi-controller", "metrics-server"):
        assert addon in running, pods

    listing = kc.ok("get", "deploy,ds,svc", "-A")
    for name in (
        "deployment.apps/hcloud-cloud-controller-manager",
        "deployment.apps/metrics-server",
        "daemonset.apps/cilium",
        "daemonset.apps/hcloud-csi-node",
        "service/kubernetes",
        "service/metrics-server",
    ):
        assert name in listing, listing


def test_create_commands_make_the_objects(kc: Created) -> None:
    kc.ok("create", "namespace", "shop")
    kc.ok("create", "deployment", "web", "-n", "shop", f"--image={PAUSE}", "--replicas=2")
    kc.ok("create", "configmap", "settings", "-n", "shop", "--from-literal=mode=fast")
    kc.ok("create", "secret", "generic", "creds", "-n", "shop", "--from-literal=pw=s3cret")
    kc.ok("create", "job", "hello", "-n", "shop", "--image=busybox:1.37", "--", "echo", "hi there")
    assert kc.json("get", "configmap", "settings", "-n", "shop")["data"] == {"mode": "fast"}
    secret = kc.ok("get", "secret", "creds", "-n", "shop", "-o", "jsonpath={.data.pw}")
    assert secret == "czNjcmV0"  # base64 of s3cret
    kc.ok("rollout", "status", "deployment/web", "-n", "shop", "--timeout=120s", timeout=150)
    kc.ok("wait", "--for=condition=Complete", "job/hello", "-n", "shop", "--timeout=120s",
          timeout=150)  # fmt: skip
    # kubectl logs job/<name> picks the Job's own pod (by its controller-uid label).
    assert kc.ok("logs", "job/hello", "-n", "shop") == "hi there\n"


def _configmap(name: str, data: dict[str, str]) -> str:
    meta = {"name": name, "namespace": "shop"}
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})


def test_apply_create_and_the_move_to_server_side_apply(kc: Created) -> None:
    assert "configmap/a created" in kc.ok("apply", "-f", "-", stdin=_configmap("a", {"k": "1"}))
    assert "configmap/a configured" in kc.ok("apply", "-f", "-", stdin=_configmap("a", {"k": "2"}))
    refused = kc.kubectl("create", "-f", "-", stdin=_configmap("a", {"k": "3"}))
    assert refused.returncode == 1 and "AlreadyExists" in refused.stderr
    assert "configmap/b created" in kc.ok("create", "-f", "-", stdin=_configmap("b", {"k": "1"}))

    # Client-side apply, then server-side: kubectl moves the fields from its
    # last-applied annotation to the kubectl manager, so a removed key goes.
    out = kc.ok("apply", "--server-side", "-f", "-", stdin=_configmap("a", {"k": "4", "n": "1"}))
    assert "configmap/a serverside-applied" in out
    kc.ok("apply", "--server-side", "-f", "-", stdin=_configmap("a", {"n": "1"}))
    applied = kc.json("get", "configmap", "a", "-n", "shop", "--show-managed-fields")
    assert applied["data"] == {"n": "1"}
    managers = {m["manager"] for m in applied["metadata"]["managedFields"]}
    assert "kubectl" in managers
    # Another manager's change to an owned field is a conflict, unless forced.
    conflict = kc.kubectl(
        "apply", "--server-side", "--field-manager=other", "-f", "-",
        stdin=_configmap("a", {"n": "2"}),
    )  # fmt: skip
    assert conflict.returncode == 1 and "conflict" in conflict.stderr.lower()


def test_explain_reads_the_servers_openapi(kc: Created) -> None:
    out = kc.ok("explain", "deployment.spec.strategy")
    assert "KIND:" in out and "Deployment" in out
    assert "rollingUpdate" in out


def test_scale_and_rollouts(kc: Created) -> None:
    kc.ok("scale", "deployment/web", "-n", "shop", "--replicas=3")
    kc.ok("rollout", "status", "deployment/web", "-n", "shop", "--timeout=120s", timeout=150)
    assert kc.json("get", "deployment", "web", "-n", "shop")["status"]["readyReplicas"] == 3
    kc.ok("set", "image", "deployment/web", "-n", "shop", "pause=registry.k8s.io/pause:3.9")
    kc.ok("rollout", "status", "deployment/web", "-n", "shop", "--timeout=120s", timeout=150)
    title, *table = kc.ok("rollout", "history", "deployment/web", "-n", "shop").splitlines()
    assert title.strip() == "deployment.apps/web"
    assert [line.split() for line in table if line.strip()] == [
        ["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]  # fmt: skip
    kc.ok("rollout", "undo", "deployment/web", "-n", "shop")
    kc.ok("rollout", "status", "deployment/web", "-n", "shop", "--timeout=120s", timeout=150)
    image = kc.ok(
        "get", "deployment", "web", "-n", "shop",
        "-o", "jsonpath={.spec.template.spec.containers[0].image}",
    )  # fmt: skip
    assert image == PAUSE


def test_wait_for_delete(kc: Created) -> None:
    kc.ok("delete", "configmap", "b", "-n", "shop", "--wait=false")
    kc.ok("wait", "--for=delete", "configmap/b", "-n", "shop", "--timeout=60s", timeout=90)
    assert kc.kubectl("get", "configmap", "b", "-n", "shop").returncode == 1


def test_cordon_drain_uncordon(kc: Created) -> None:
    node = kc.ok(
        "get", "pods", "-n", "shop", "-l", "app=web", "-o", "jsonpath={.items[0].spec.nodeName}"
    )
    assert node.startswith("kc-workers-")
    assert f"node/{node} cordoned" in kc.ok("cordon", node)
    assert "SchedulingDisabled" in kc.ok("get", "node", node)
    out = kc.ok(
        "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s",
        timeout=150,
    )  # fmt: skip
    assert f"node/{node} drained" in out
    kc.ok("rollout", "status", "deployment/web", "-n", "shop", "--timeout=120s", timeout=150)
    placed = kc.ok(
        "get", "pods", "-n", "shop", "-l", "app=web",
        "-o", "jsonpath={.items[*].spec.nodeName}",
    ).split()  # fmt: skip
    assert placed and node not in placed
    assert f"node/{node} uncordoned" in kc.ok("uncordon", node)
    assert "SchedulingDisabled" not in kc.ok("get", "node", node)
    assert [f"cordon {node}", f"uncordon {node}"] == [c for c in kc.cordons() if c.endswith(node)]


def test_top_nodes_reads_metrics_server(kc: Created) -> None:
    kc.ok(
        "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io",
        "--timeout=120s", timeout=150,
    )  # fmt: skip
    header, nodes = rows(kc.ok("top", "nodes"))
    assert header == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert sorted(n[0] for n in nodes) == ["kc-cp-1", "kc-workers-1", "kc-workers-2"]
    header, pods = rows(kc.ok("top", "pods", "-n", "shop"))
    assert header == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert len(pods) == 3 and all(p[0].startswith("web-") for p in pods)


def test_get_all_and_auth_can_i(kc: Created) -> None:
    listing = kc.ok("get", "all", "-n", "shop")
    for name in ("deployment.apps/web", "job.batch/hello", "pod/web-"):
        assert name in listing, listing
    assert kc.ok("auth", "can-i", "delete", "nodes").strip() == "yes"
    as_default = kc.kubectl("auth", "can-i", "list", "secrets", "-n", "shop",
                            "--as=system:serviceaccount:shop:default")  # fmt: skip
    assert as_default.returncode == 1 and as_default.stdout.strip() == "no"


def _lb_and_claim() -> str:
    labels = {"app": "store"}
    items = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "store", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "selector": labels,
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "store-data", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "12Gi"}}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "store", "namespace": "shop"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "store", "image": PAUSE,
                                        "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                        "volumes": [{"name": "d",
                                     "persistentVolumeClaim": {"claimName": "store-data"}}],
                    },
                },
            },
        },
    ]  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _leftovers(kc: Created, client: hcloud.Client) -> list[str]:
    found = []
    for selector in ("cluster=kc", "managed-by=csi-driver", "hcloud-ccm/service-uid"):
        found += [f"volume/{v.name}" for v in client.volumes.get_all(label_selector=selector)]
        balancers = client.load_balancers.get_all(label_selector=selector)
        found += [f"load-balancer/{b.name}" for b in balancers]
        found += [f"server/{s.name}" for s in client.servers.get_all(label_selector=selector)]
        found += [f"network/{n.name}" for n in client.networks.get_all(label_selector=selector)]
    return found


def test_load_balancer_and_volume_then_destroy_removes_them(kc: Created) -> None:
    client = kc.hcloud()
    kc.ok("apply", "-f", "-", stdin=_lb_and_claim())
    kc.ok(
        "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/store-data", "-n", "shop",
        "--timeout=120s", timeout=150,
    )  # fmt: skip
    kc.ok(
        "wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}", "svc/store", "-n", "shop",
        "--timeout=120s", timeout=150,
    )  # fmt: skip
    svc = kc.json("get", "svc", "store", "-n", "shop")
    (lb,) = client.load_balancers.get_all(
        label_selector=f"hcloud-ccm/service-uid={svc['metadata']['uid']}"
    )
    # No location annotation: the default hk8s gives the CCM is the cluster's location.
    assert lb.location.name == "nbg1"
    ingress = {i["ip"] for i in svc["status"]["loadBalancer"]["ingress"]}
    assert lb.public_net.ipv4.ip in ingress
    _, (row,) = rows(kc.ok("get", "svc", "store", "-n", "shop"))
    assert row[1] == "LoadBalancer" and lb.public_net.ipv4.ip in row[3]
    workers = {s.id for s in client.servers.get_all(label_selector="cluster=kc,role=worker")}
    assert {t.server.id for t in lb.targets} >= workers

    pvc = kc.json("get", "pvc", "store-data", "-n", "shop")
    (volume,) = client.volumes.get_all(label_selector="pvc-namespace=shop")
    assert volume.name == pvc["spec"]["volumeName"] and volume.size == 12
    assert volume.labels["cluster"] == "kc"  # hk8s' controller.volumeExtraLabels
    assert volume.location.name == "nbg1"
    kc.ok(
        "wait", "--for=jsonpath={.status.attached}=true", "volumeattachment", "--all",
        "--timeout=120s", timeout=150,
    )  # fmt: skip
    assert client.volumes.get_by_id(volume.id).server is not None

    result = kc.hk8s("-v", "destroy", "--yes")
    err = result.stderr
    assert "delete Service shop/store" in err
    assert "delete PersistentVolumeClaim shop/store-data" in err
    # pvc-protection holds the claim while the Deployment's pod mounts it: destroy deletes
    # the pod, and the CCM and CSI driver remove their resources before the label sweep.
    assert "delete pod shop/store-" in err
    assert "the CCM and CSI driver deleted their load balancers and volumes" in err
    assert "not deleted yet" not in err and "still terminating" not in err
    assert f"load-balancer {lb.name} already gone" in err
    assert f"volume {volume.name} already gone" in err
    assert _leftovers(kc, client) == []
