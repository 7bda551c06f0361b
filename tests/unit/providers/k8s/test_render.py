"""hk8s' addon manifests: valid objects, the helm contract, the token only in its Secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from hk8s.config import ADDON_CHARTS, parse_config
from hk8s.errors import UsageError
from hk8s.providers.k8s import (
    ADDON_WORKLOADS,
    HELM_IMAGE,
    Workload,
    manifests_dir,
    merge_values,
    render_addon_manifests,
    render_base_manifests,
)
from hk8s.sim.machines._charts import CATALOG

TOKEN = "tok3n-" + "x" * 58


def cluster(extra: str = "") -> Any:
    return parse_config("name: demo\nlocation: fsn1\n" + extra, source="cluster.yaml")


def all_objects(config: Any) -> list[dict[str, Any]]:
    objects = render_base_manifests(config, token=TOKEN, network_id=4711)
    for addon in ADDON_CHARTS:
        objects.extend(render_addon_manifests(config, addon).objects)
    return objects


def test_every_template_is_found_and_every_object_is_well_formed() -> None:
    assert {p.name for p in manifests_dir().glob("*.yaml")} >= {
        "hcloud-secret.yaml",
        "helm-rbac.yaml",
        "addon-values.yaml",
        "addon-job.yaml",
    }
    for obj in all_objects(cluster()):
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "hk8s"
        if obj["kind"] != "ClusterRoleBinding":
            assert obj["metadata"]["namespace"] == "kube-system"
        assert "$" not in json.dumps(obj)  # every placeholder was filled


def test_token_appears_only_in_the_hcloud_secret_and_never_in_reprs() -> None:
    objects = all_objects(cluster())
    holders = [o for o in objects if TOKEN in json.dumps(o)]
    assert [(o["kind"], o["metadata"]["name"]) for o in holders] == [("Secret", "hcloud")]
    secret = holders[0]
    assert secret["stringData"] == {"token": TOKEN, "network": "4711"}
    assert TOKEN not in repr(objects) and TOKEN not in str(objects)
    assert json.loads(json.dumps(secret))["stringData"]["token"] == TOKEN  # on the wire


def test_empty_token_is_refused() -> None:
    with pytest.raises(UsageError, match="token is empty") as info:
        render_base_manifests(cluster(), token="", network_id=1)
    assert info.value.hint is not None and "HCLOUD_TOKEN" in info.value.hint


def test_helm_rbac_binds_the_job_service_account() -> None:
    _, account, binding = render_base_manifests(cluster(), token=TOKEN, network_id=1)
    assert (account["kind"], account["metadata"]["name"]) == ("ServiceAccount", "hk8s-helm")
    assert binding["roleRef"]["name"] == "cluster-admin"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hk8s-helm", "namespace": "kube-system"}
    ]


@pytest.mark.parametrize("addon", list(ADDON_CHARTS))
def test_job_runs_helm_with_exactly_the_contract_args(addon: str) -> None:
    install = render_addon_manifests(cluster(), addon)
    chart = ADDON_CHARTS[addon]
    configmap, job = install.objects
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == HELM_IMAGE
    assert container["command"] == ["helm"]
    assert container["args"] == [
        "upgrade",
        "--install",
        chart.release,
        chart.chart,
        "--repo",
        chart.repo,
        "--version",
        chart.version,
        "--namespace",
        chart.namespace,
        "--create-namespace",
        "--values",
        "/values/values.yaml",
    ]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/values")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert yaml.safe_load(configmap["data"]["values.yaml"]) == install.values
    assert job["metadata"]["name"] == install.job_name and len(install.job_name) <= 63
    assert install.workloads == ADDON_WORKLOADS[addon]


def test_job_can_run_before_any_cni_or_cloud_controller() -> None:
    job = render_addon_manifests(cluster(), "cilium").objects[1]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "Default"
    tolerated = {(t["key"], t["effect"]) for t in pod["tolerations"]}
    assert {
        ("node.kubernetes.io/not-ready", "NoSchedule"),
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.cloudprovider.kubernetes.io/uninitialized", "NoSchedule"),
        ("node-role.kubernetes.io/control-plane", "NoSchedule"),
    } <= tolerated
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("localhost", "7445")
    assert pod["serviceAccountName"] == "hk8s-helm" and pod["restartPolicy"] == "Never"
    assert spec["backoffLimit"] >= 1 and spec["ttlSecondsAfterFinished"] > 0


def test_cilium_defaults_follow_talos_guide() -> None:
    values = render_addon_manifests(cluster(), "cilium").values
    assert values["ipam"] == {"mode": "kubernetes"}
    assert values["kubeProxyReplacement"] is True
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("localhost", 7445)
    assert values["cgroup"] == {"autoMount": {"enabled": False}, "hostRoot": "/sys/fs/cgroup"}
    assert "SYS_MODULE" not in values["securityContext"]["capabilities"]["ciliumAgent"]
    assert values["operator"]["replicas"] == 1  # one node: the second replica never schedules
    big = cluster("control_plane: {count: 3}\nworkers: [{name: w, count: 2}]\n")
    assert render_addon_manifests(big, "cilium").values["operator"]["replicas"] == 2


def test_ccm_gets_the_pod_cidr_and_user_values_merge_last() -> None:
    config = cluster(
        "network: {pod_cidr: 10.42.0.0/16}\n"
        "addons:\n"
        "  hcloud_ccm: {values: {networking: {enabled: false}, replicaCount: 2}}\n"
        "  cilium:\n"
        "    version: 1.20.1\n"
        "    values: {cgroup: {autoMount: null}, hubble: {enabled: true}}\n"
    )
    ccm = render_addon_manifests(config, "hcloud_ccm").values
    assert ccm == {
        "networking": {"enabled": False, "clusterCIDR": "10.42.0.0/16"},
        "env": {"HCLOUD_LOAD_BALANCERS_LOCATION": {"value": config.location}},
        "replicaCount": 2,
    }
    cilium = render_addon_manifests(config, "cilium")
    assert cilium.values["cgroup"] == {"autoMount": None, "hostRoot": "/sys/fs/cgroup"}
    assert cilium.values["hubble"] == {"enabled": True}
    assert cilium.objects[1]["spec"]["template"]["spec"]["containers"][0]["args"][7] == "1.20.1"


def test_a_ccm_run_as_a_daemonset_is_waited_for_as_one() -> None:
    # The CCM chart's `kind: DaemonSet` (its full.daemonset-values.yaml) makes a DaemonSet of
    # the same name instead of the Deployment: create must wait for what the chart made, in
    # the simulated world as on a real cluster, or it waits for a Deployment until its deadline.
    config = cluster("addons:\n  hcloud_ccm: {values: {kind: DaemonSet}}\n")
    install = render_addon_manifests(config, "hcloud_ccm")
    assert install.workloads == (
        Workload("DaemonSet", "kube-system", "hcloud-cloud-controller-manager"),
    )
    chart = CATALOG[install.chart]
    made = {
        (o["kind"], o["metadata"]["name"]) for o in chart.render(install.version, install.values)
    }
    assert all((w.kind, w.name) in made for w in install.workloads)
    assert (
        render_addon_manifests(cluster(), "hcloud_ccm").workloads == ADDON_WORKLOADS["hcloud_ccm"]
    )


def test_load_balancers_default_to_the_clusters_location() -> None:
    # Without it the CCM refuses a plain `type: LoadBalancer` Service (no location annotation).
    for location in ("fsn1", "hel1"):
        config = parse_config(f"name: demo\nlocation: {location}\n", source="cluster.yaml")
        env = render_addon_manifests(config, "hcloud_ccm").values["env"]
        assert env == {"HCLOUD_LOAD_BALANCERS_LOCATION": {"value": location}}


def test_changed_values_give_a_new_job_name_and_same_values_the_same() -> None:
    first = render_addon_manifests(cluster(), "metrics_server").job_name
    assert render_addon_manifests(cluster(), "metrics_server").job_name == first
    changed = cluster("addons: {metrics_server: {values: {replicas: 2}}}\n")
    assert render_addon_manifests(changed, "metrics_server").job_name != first


def test_values_that_look_like_yaml_cannot_break_the_manifest() -> None:
    tricky = 'a: "x\\n  injected: true"\n'
    config = cluster("addons: {hcloud_csi: {values: {note: " + json.dumps(tricky) + "}}}\n")
    configmap = render_addon_manifests(config, "hcloud_csi").objects[0]
    assert set(configmap["data"]) == {"values.yaml"}
    assert yaml.safe_load(configmap["data"]["values.yaml"])["note"] == tricky


def test_unknown_addon_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown addon"):
        render_addon_manifests(cluster(), "traefik")


def test_merge_values_is_helm_like() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_values(base, {"a": {"c": [3]}, "d": None, "e": {"f": 1}, "g": None}) == {
        "a": {"b": 1, "c": [3]},
        "d": None,  # Helm gets the null: it deletes the chart's default too
        "e": {"f": 1},
        "g": None,  # a null for a key only the chart sets reaches Helm as well
    }
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # inputs untouched


def test_installed_wheel_templates_are_preferred(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hk8s.providers.k8s import _render

    packaged = tmp_path / "hk8s" / "_data" / "manifests"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(_render.resources, "files", lambda _pkg: tmp_path / "hk8s")
    assert manifests_dir() == packaged
