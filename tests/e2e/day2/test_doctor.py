"""``hk8s doctor`` end to end: silent on a healthy cluster, then each injected problem reported
exactly once with its fix, and nothing changed by the diagnosis itself."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from typing import TYPE_CHECKING, Any

import hcloud
from hcloud.firewalls import FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

from hk8s.pki import generate_admin_kubeconfig, load_secrets

if TYPE_CHECKING:
    from .conftest import Day2World


def client(world: Day2World) -> hcloud.Client:
    return hcloud.Client(
        token=world.env["HCLOUD_TOKEN"], api_endpoint=world.env["HCLOUD_ENDPOINT"],
        poll_interval=0.05,
    )  # fmt: skip


def problems(result: Any) -> list[tuple[str, str]]:
    report = json.loads(result.stdout)
    return [(p["check"], p["subject"]) for c in report["checks"] for p in c["problems"]]


def set_kubelet_version(world: Day2World, name: str, version: str) -> str:
    """What a kubelet of another version would post (the simulated kubelet posts only its
    conditions after registering, so the change stays)."""
    path = f"/api/v1/nodes/{name}"
    before = str(world.kube_get(path)["status"]["nodeInfo"]["kubeletVersion"])
    world.kube_patch(f"{path}/status", {"status": {"nodeInfo": {"kubeletVersion": version}}})
    return before


def set_alarm(world: Day2World, alarm: str | None) -> None:
    def change() -> None:
        [cluster] = world.world.fleet.clusters.values()
        member = next(m for m in cluster.members.values() if m.hostname == "demo-cp-2")
        if alarm is None:
            cluster.alarms.clear()
        else:
            cluster.alarms[member.id] = alarm

    world.threaded.call(change)


def set_deployed_chart(world: Day2World, release: str, version: str) -> str:
    """Rewrite the chart version in the deployed revision of a Helm release (as a `helm
    upgrade` by hand would leave it); returns the version it had."""

    [old] = world.kube_items(
        "/api/v1/namespaces/kube-system/secrets",
        labelSelector=f"owner=helm,name={release},status=deployed",
    )
    payload = json.loads(
        gzip.decompress(base64.b64decode(base64.b64decode(old["data"]["release"])))
    )
    before = str(payload["chart"]["metadata"]["version"])
    payload["chart"]["metadata"]["version"] = version
    blob = base64.b64encode(gzip.compress(json.dumps(payload).encode()))
    path = f"/api/v1/namespaces/kube-system/secrets/{old['metadata']['name']}"
    world.kube_patch(path, {"data": {"release": base64.b64encode(blob).decode()}})
    return before


def test_doctor_reports_each_injected_problem_once(world: Day2World) -> None:
    healthy = world.hk8s("doctor", "-o", "json", check=False)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout)["healthy"] is True

    api = client(world)
    firewall = api.firewalls.get_by_name("demo-fw")
    assert firewall is not None
    rules = list(firewall.rules or [])
    moved = [
        FirewallRule(r.direction, r.protocol, ["198.51.100.0/24"], r.port, r.destination_ips,
                     r.description)
        for r in rules
    ]  # fmt: skip
    kubeconfig = world.dir / "kubeconfig"
    fresh = kubeconfig.read_text()
    talosconfig = world.dir / "talosconfig"
    fresh_talos = talosconfig.read_text()
    bundle = load_secrets(world.dir / "secrets.yaml")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    orphan = api.servers.create(
        "demo-old-1", server_type=ServerType(name="cx23"), image=Image(name="debian-12"),
        location=Location(name="fsn1"), labels={"cluster": "demo", "managed-by": "hk8s"},
    ).server  # fmt: skip
    before = chart = ""
    try:
        api.firewalls.set_rules(firewall, moved)
        kubeconfig.write_text(
            generate_admin_kubeconfig("demo", bundle.k8s_ca, "https://x:6443", now=old)
        )
        talosconfig.write_text("contexts: {demo: {crt: not-base64!}}\n")
        set_alarm(world, "NOSPACE")
        before = set_kubelet_version(world, "demo-workers-1", "v1.30.0")
        # cluster.yaml's CCM chart is fine; the one deployed is older than Hetzner's minimum
        chart = set_deployed_chart(world, "hcloud-cloud-controller-manager", "1.27.0")
        world.reset_stats()

        sick = world.hk8s("doctor", "-o", "json", check=False)
        assert sick.returncode == 1, sick.stderr
        found = problems(sick)
        assert sorted(found) == sorted(
            [
                ("node versions", "demo-workers-1"),
                ("certificates", "kubeconfig user admin@demo"),
                ("certificates", "talosconfig"),
                ("etcd", "demo-cp-2"),
                ("firewall", "demo-fw port 6443"),
                ("firewall", "demo-fw port 50000"),
                ("orphans", "server demo-old-1"),
                ("versions", "deployed hcloud-cloud-controller-manager chart 1.27.0"),
            ]
        ), found
        assert world.mutating() == 0  # a diagnosis changes nothing
        text = world.hk8s("doctor", check=False)
        assert text.returncode == 1
        assert "alarm:NOSPACE" in text.stdout and "talosctl etcd alarm disarm" in text.stdout
        assert "expired on" in text.stdout and "hk8s kubeconfig" in text.stdout
        assert "no longer admits your IP 127.0.0.1" in text.stdout
        assert "runs Kubernetes v1.30.0" in text.stdout
        assert "is older than 1.30.1" in text.stdout and "then `hk8s create" in text.stdout
        assert "8 problem(s) found" in text.stdout
    finally:
        api.firewalls.set_rules(firewall, rules)
        kubeconfig.write_text(fresh)
        talosconfig.write_text(fresh_talos)
        set_alarm(world, None)
        if before:
            set_kubelet_version(world, "demo-workers-1", before)
        if chart:
            set_deployed_chart(world, "hcloud-cloud-controller-manager", chart)
        api.servers.delete(orphan).wait_until_finished()
    assert world.hk8s("doctor", check=False).returncode == 0
