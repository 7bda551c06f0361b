"""Planning servers: names, labels, placement groups, scale-down order (pure functions)."""

from __future__ import annotations

from controller_support import cluster
from hk8s.controller import (
    CLUSTER_ID_LABEL,
    Operation,
    Plan,
    build_plan,
    cluster_id_label,
    desired_servers,
    diff_servers,
    quorum_after_removal,
    removal_order,
    split_removals,
)
from hk8s.model.resources import Server


def server(name: str, pool: str, role: str = "worker", sid: int = 1) -> Server:
    labels = {"cluster": "demo", "managed-by": "hk8s", "pool": pool, "role": role}
    return Server(sid, name, "running", "cx23", "fsn1", labels)


def test_desired_servers_are_named_labelled_and_grouped_per_ten() -> None:
    config = cluster(cp=3, workers=12)
    desired = desired_servers(config, cluster_id="id-1")
    names = [d.name for d in desired]
    assert names[:4] == ["demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1"]
    assert len(names) == 15
    cp1 = desired[0]
    assert cp1.labels == {
        "cluster": "demo",
        "managed-by": "hk8s",
        "role": "control-plane",
        "pool": "cp",
        CLUSTER_ID_LABEL: cluster_id_label("id-1"),
    }
    groups = {d.name: d.placement_group for d in desired}
    assert groups["demo-workers-10"] == "demo-workers-pg-1"
    assert groups["demo-workers-11"] == "demo-workers-pg-2"
    assert groups["demo-cp-3"] == "demo-cp-pg-1"


def test_mixed_architectures_follow_the_server_type() -> None:
    config = cluster(extra="workers:\n  - name: arm\n    count: 1\n    server_type: cax21\n")
    archs = {d.name: d.arch for d in desired_servers(config, cluster_id="x")}
    assert archs == {"demo-cp-1": "amd64", "demo-arm-1": "arm64"}


def test_diff_creates_only_missing_servers_with_reasons() -> None:
    config = cluster(cp=1, workers=2)
    desired = desired_servers(config, cluster_id="x")
    ops = diff_servers("demo", desired, [server("demo-workers-1", "workers")], images={"amd64": 7})
    assert [(op.type, op.name) for op in ops] == [
        ("create", "demo-cp-1"),
        ("create", "demo-workers-2"),
    ]
    assert all(op.params == {"image": 7} for op in ops)
    assert "pool workers" in ops[1].reason


def test_scale_down_removes_highest_numbers_workers_first_one_at_a_time() -> None:
    config = cluster(cp=1, workers=1)
    observed = [
        server("demo-cp-1", "cp", "control-plane", 1),
        server("demo-cp-2", "cp", "control-plane", 2),
        server("demo-cp-3", "cp", "control-plane", 3),
        server("demo-workers-1", "workers", sid=4),
        server("demo-workers-2", "workers", sid=5),
        server("demo-workers-10", "workers", sid=6),
        server("demo-gone-1", "gone", sid=7),
    ]
    ops = diff_servers("demo", desired_servers(config, cluster_id="x"), observed)
    assert [op.name for op in ops] == [
        "demo-workers-10",
        "demo-workers-2",
        "demo-gone-1",
        "demo-cp-3",
        "demo-cp-2",
    ]
    assert all(op.type == "delete" for op in ops)
    # chained: each removal waits for the previous one
    assert [op.depends_on for op in ops[1:]] == [(f"server/{op.name}",) for op in ops[:-1]]
    assert "no longer in the config" in ops[2].reason
    assert "leave etcd" in ops[3].reason
    assert "scaled down to 1" in ops[0].reason


def test_removal_order_ignores_numbers_of_other_pools_prefixes() -> None:
    servers = [server("demo-a-2", "a"), server("demo-a-b-9", "a-b"), server("demo-a-10", "a")]
    assert [s.name for s in removal_order("demo", servers)] == [
        "demo-a-10",
        "demo-a-b-9",
        "demo-a-2",
    ]


def test_split_removals_defers_deletes_and_their_dependents() -> None:
    ops = [
        Operation("create", "server", "demo-w-1", "missing"),
        Operation("delete", "server", "demo-old-1", "pool gone"),
        Operation("delete", "placement-group", "demo-old-pg-1", "pool gone"),
        Operation("create", "network", "demo", "missing"),
    ]
    plan = build_plan(ops)
    now, later = split_removals(plan)
    assert sorted(op.key for op in now.operations) == ["network/demo", "server/demo-w-1"]
    assert [op.key for op in later.operations] == [
        "server/demo-old-1",
        "placement-group/demo-old-pg-1",
    ]
    assert split_removals(Plan()) == (Plan(), Plan())


def test_quorum_rule() -> None:
    assert quorum_after_removal(3, 0)  # 3 -> 2, both up
    assert not quorum_after_removal(3, 1)  # 3 -> 2 with one down: 1 of 2 is no majority
    assert quorum_after_removal(5, 1)  # 5 -> 4 with one down: 3 of 4
    assert quorum_after_removal(2, 0)  # 2 -> 1
    assert not quorum_after_removal(1, 0)  # never below one member


def test_endpoint_is_the_load_balancer_else_the_first_control_plane() -> None:
    from hk8s.controller import cluster_endpoint, desired_servers, pair_nodes
    from hk8s.model.resources import LoadBalancer, PrivateIP

    config = cluster(cp=3, workers=1)
    desired = desired_servers(config, cluster_id="x")
    servers = [
        Server(i, d.name, "running", "cx23", "fsn1", d.labels, None, f"127.9.0.{i}",
               (PrivateIP(1, f"10.0.1.{i}"),))
        for i, d in enumerate(desired, start=1)
    ]  # fmt: skip
    nodes = pair_nodes(desired, servers)
    cps = [n for n in nodes if n.desired.control_plane]
    lb = LoadBalancer(9, "demo-api", "lb11", "fsn1", public_ipv4="127.8.0.1")
    with_lb = cluster_endpoint(lb, cps)
    assert with_lb.url == "https://127.8.0.1:6443"
    assert with_lb.cert_sans == (
        "127.8.0.1", "127.9.0.1", "10.0.1.1", "127.9.0.2", "10.0.1.2", "127.9.0.3", "10.0.1.3",
    )  # fmt: skip
    without = cluster_endpoint(None, cps)
    assert without.host == "127.9.0.1"
    assert "127.9.0.4" not in without.cert_sans  # workers are not API endpoints
