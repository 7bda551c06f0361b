"""The destroy order and the ownership rules, as pure functions."""

from __future__ import annotations

from hk8s.controller import (
    ObservedCluster,
    ccm_load_balancer_owned,
    csi_volume_owned,
    execution_waves,
    kubeconfig_cluster,
    ownership_problem,
    plan_destroy,
    snapshots_to_delete,
)
from hk8s.model.resources import (
    Firewall,
    Image,
    LBTarget,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrivateIP,
    Server,
    SSHKey,
    Volume,
)

DEMO = {"cluster": "demo", "managed-by": "hk8s"}


def observed() -> ObservedCluster:
    return ObservedCluster(
        "demo",
        servers=tuple(
            Server(i, f"demo-cp-{i}", "running", "cx23", "fsn1", {**DEMO, "role": "control-plane"})
            for i in (1, 2)
        ),
        load_balancers=(LoadBalancer(10, "demo-api", "lb11", "fsn1", DEMO),),
        ccm_load_balancers=(
            LoadBalancer(11, "a123", "lb11", "fsn1", {"hcloud-ccm/service-uid": "123"}),
        ),
        firewalls=(Firewall(20, "demo-fw", DEMO, applied_selectors=("cluster=demo",)),),
        placement_groups=(PlacementGroup(30, "demo-cp-pg-1", labels=DEMO),),
        networks=(Network(40, "demo", "10.0.0.0/16", DEMO),),
        ssh_keys=(SSHKey(50, "demo-admin", "fp", "key", DEMO),),
        volumes=(Volume(60, "pvc-1", 10, "fsn1", {"managed-by": "csi-driver"}, server_id=1),),
        images=(Image(70, None, "snapshot", "available", "x86", "talos", {"os": "talos"}),),
    )


def test_waves_ccm_lbs_then_servers_then_what_servers_use_then_the_network() -> None:
    waves = [
        [op.key for op in wave] for wave in execution_waves(plan_destroy(observed()).operations)
    ]
    assert waves == [
        ["load-balancer/a123"],
        ["server/demo-cp-1", "server/demo-cp-2"],
        [
            "firewall/demo-fw",
            "placement-group/demo-cp-pg-1",
            "load-balancer/demo-api",
            "ssh-key/demo-admin",
            "image/talos (#70)",
            "volume/pvc-1",
        ],
        ["network/demo"],
    ]


def test_every_operation_is_a_delete_with_its_owner_rule() -> None:
    plan = plan_destroy(observed())
    assert {op.type for op in plan.operations} == {"delete"}
    owners = {op.key: op.params["owner"] for op in plan.operations}
    assert owners["load-balancer/a123"] == "ccm"
    assert owners["volume/pvc-1"] == "csi"
    assert owners["image/talos (#70)"] == "snapshot"
    assert owners["server/demo-cp-1"] == "hk8s"
    [fw] = [op for op in plan.operations if op.kind == "firewall"]
    assert fw.params["detach"] == ["cluster=demo"]
    assert plan.counts() == {"create": 0, "update": 0, "delete": 10}


def test_nothing_observed_is_an_empty_plan() -> None:
    assert plan_destroy(ObservedCluster("demo")).empty


def test_ccm_load_balancer_belongs_by_service_network_or_target() -> None:
    def lb(**kw: object) -> LoadBalancer:
        return LoadBalancer(1, "a1", "lb11", "fsn1", {"hcloud-ccm/service-uid": "u1"}, **kw)  # type: ignore[arg-type]

    assert ccm_load_balancer_owned(lb(), network_ids=[], server_ids=[], service_uids=["u1"])
    attached = lb(private_ips=(PrivateIP(40, "10.0.0.5"),))
    assert ccm_load_balancer_owned(attached, network_ids=[40], server_ids=[])
    assert not ccm_load_balancer_owned(attached, network_ids=[41], server_ids=[])
    targeting = lb(targets=(LBTarget("server", server_id=7),))
    assert ccm_load_balancer_owned(targeting, network_ids=[], server_ids=[7])
    assert not ccm_load_balancer_owned(targeting, network_ids=[], server_ids=[8])
    unlabelled = LoadBalancer(2, "x", "lb11", "fsn1", {}, private_ips=(PrivateIP(40, "10.0.0.6"),))
    assert not ccm_load_balancer_owned(unlabelled, network_ids=[40], server_ids=[])


def test_csi_volume_belongs_by_attachment_pv_name_or_cluster_label() -> None:
    def vol(labels: dict[str, str], server: int | None = None) -> Volume:
        return Volume(1, "pvc-abc", 10, "fsn1", labels, server_id=server)

    csi = {"managed-by": "csi-driver"}
    assert csi_volume_owned(vol(csi, 7), cluster="demo", server_ids=[7])
    assert not csi_volume_owned(vol(csi, 8), cluster="demo", server_ids=[7])
    assert csi_volume_owned(vol({**csi, "pv-name": "pvc-abc"}), cluster="demo", server_ids=[],
                            pv_names=["pvc-abc"])  # fmt: skip
    assert csi_volume_owned(vol({**csi, "cluster": "demo"}), cluster="demo", server_ids=[])
    assert not csi_volume_owned(vol({**csi, "cluster": "prod"}), cluster="demo", server_ids=[])
    # A volume someone made by hand is never a CSI volume, attached or not.
    assert not csi_volume_owned(vol({}, 7), cluster="demo", server_ids=[7])


def test_snapshots_used_by_other_clusters_are_kept() -> None:
    def snap(i: int, **labels: str) -> Image:
        return Image(i, None, "snapshot", "available", "x86", f"talos {i}", labels)

    talos = [snap(1, os="talos"), snap(2, os="talos"), snap(3, os="talos")]
    own = [snap(4, **DEMO)]
    servers = [
        Server(10, "demo-cp-1", "running", "cx23", "fsn1", DEMO, image_id=1),
        Server(11, "prod-cp-1", "running", "cx23", "fsn1", {**DEMO, "cluster": "prod"}, image_id=2),
        Server(12, "mine", "running", "cx23", "fsn1", {}, image_id=3),
    ]
    delete, kept = snapshots_to_delete("demo", talos, own, servers)
    assert [i.id for i in delete] == [1, 4]
    assert {k.image.id: k.reason for k in kept} == {
        2: "servers of other clusters use it (prod-cp-1)",
        3: "servers of other clusters use it (mine)",
    }


def test_ownership_recheck_refuses_relabelled_resources() -> None:
    assert ownership_problem("hk8s", DEMO, "demo") is None
    assert ownership_problem("hk8s", {**DEMO, "cluster": "prod"}, "demo") == (
        "it is labelled cluster=prod, not cluster=demo"
    )
    assert ownership_problem("hk8s", {"cluster": "demo"}, "demo") == (
        "it is not labelled managed-by=hk8s"
    )
    ccm = {"hcloud-ccm/service-uid": "u1"}
    assert ownership_problem("ccm", ccm, "demo", service_uid="u1") is None
    assert ownership_problem("ccm", {"hcloud-ccm/service-uid": "u2"}, "demo", service_uid="u1")
    assert ownership_problem("csi", {"managed-by": "csi-driver"}, "demo") is None
    assert ownership_problem("csi", {}, "demo")
    assert ownership_problem("snapshot", {"os": "talos", "managed-by": "hk8s"}, "demo") is None
    assert ownership_problem("snapshot", {"os": "talos"}, "demo")


def test_kubeconfig_cluster_is_the_current_context_s_cluster() -> None:
    doc = {
        "current-context": "admin@prod",
        "contexts": [
            {"name": "admin@demo", "context": {"cluster": "demo"}},
            {"name": "admin@prod", "context": {"cluster": "prod"}},
        ],
    }
    assert kubeconfig_cluster(doc) == "prod"
    assert kubeconfig_cluster({"contexts": []}) is None
