"""How the addon charts' values reach the simulated cloud side: the environment the real
programs read (the CCM's load balancer defaults, the CSI driver's volume labels), the port the
metrics-server Service names, and what a plain Job that echoes prints."""

from __future__ import annotations

from typing import Any

from hk8s.sim.machines._charts import CATALOG
from hk8s.sim.machines._cloudside import container_env, parse_labels
from hk8s.sim.machines._joblog import echo_output


def _pod_of(chart: str, values: dict[str, Any], name: str) -> dict[str, Any]:
    rendered = CATALOG[chart].render(CATALOG[chart].latest, values)
    (workload,) = [
        o for o in rendered if o["metadata"]["name"] == name and "template" in o.get("spec", {})
    ]
    return dict(workload["spec"]["template"])


def test_ccm_env_values_become_its_environment() -> None:
    values = {
        "networking": {"enabled": True},
        "env": {"HCLOUD_LOAD_BALANCERS_LOCATION": {"value": "hel1"}},
    }
    pod = _pod_of("hcloud-cloud-controller-manager", values, "hcloud-cloud-controller-manager")
    assert container_env(pod) == {"HCLOUD_LOAD_BALANCERS_LOCATION": "hel1"}
    names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
    assert names[:2] == ["HCLOUD_TOKEN", "HCLOUD_NETWORK"]  # from Secret hcloud, as before


def test_csi_volume_extra_labels_become_its_environment() -> None:
    values = {"controller": {"volumeExtraLabels": {"cluster": "demo", "team": "a"}}}
    pod = _pod_of("hcloud-csi", values, "hcloud-csi-controller")
    env = container_env(pod)
    assert env == {"HCLOUD_VOLUME_EXTRA_LABELS": "cluster=demo,team=a"}
    assert parse_labels(env["HCLOUD_VOLUME_EXTRA_LABELS"]) == {"cluster": "demo", "team": "a"}
    assert container_env(_pod_of("hcloud-csi", {}, "hcloud-csi-controller")) == {}


def test_metrics_server_declares_the_port_its_service_targets() -> None:
    pod = _pod_of("metrics-server", {}, "metrics-server")
    assert pod["spec"]["containers"][0]["ports"] == [
        {"name": "https", "containerPort": 10250, "protocol": "TCP"}
    ]


def test_a_job_that_echoes_logs_its_words() -> None:
    assert echo_output({"command": ["echo", "hi", "there"]}) == "hi there\n"
    assert echo_output({"command": ["/bin/sh", "-c"], "args": ["echo 'a b'"]}) == "a b\n"
    assert echo_output({"command": ["echo", "-n", "x"]}) == "x"
    assert echo_output({"command": ["sleep", "1"]}) == ""
    assert echo_output({"command": ["sh", "-c"], "args": ["echo 'unclosed"]}) == ""
