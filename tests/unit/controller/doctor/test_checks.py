"""The checks of ``hk8s doctor`` as pure functions: each problem once, with its fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hk8s.config import ClusterConfig
from hk8s.controller.doctor._checks import (
    certificate_problems,
    deployed_chart_problems,
    etcd_problems,
    firewall_problems,
    node_version_problems,
    orphan_problems,
    version_problems,
)
from hk8s.model.resources import Firewall, FirewallRule
from hk8s.pki import KeyAlgorithm, create_ca
from hk8s.providers.talos import EtcdMemberStatus

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def config(**fields: Any) -> ClusterConfig:
    return ClusterConfig.model_validate({"name": "demo", "location": "fsn1", **fields})


def status(member: int, *, leader: int = 1, errors: tuple[str, ...] = ()) -> EtcdMemberStatus:
    return EtcdMemberStatus(
        member_id=member, leader=leader, db_size=1, db_size_in_use=1, raft_index=1, raft_term=1,
        raft_applied_index=1, protocol_version="3.5.21", storage_version="3.5.0",
        is_learner=False, errors=errors,
    )  # fmt: skip


def test_versions_inside_the_matrix_pass() -> None:
    assert version_problems(config(talos={"version": "v1.12.0"})) == []


def test_a_kubernetes_version_outside_talos_range_is_one_problem_with_the_range() -> None:
    cfg = config(talos={"version": "v1.12.0"})
    cfg = cfg.model_copy(
        update={"kubernetes": cfg.kubernetes.model_copy(update={"version": "1.29.0"})}
    )
    problems = version_problems(cfg)
    assert {p.subject for p in problems} == {"kubernetes.version"}
    assert "Kubernetes 1.29.0 is not supported by Talos v1.12.0" in problems[0].problem


def test_a_ccm_older_than_hetzners_minimum_is_a_problem() -> None:
    """Hetzner removed the API's datacenter field on 2026-07-01: CCM charts before 1.30.1
    break against today's API (the version matrix's provider minimum)."""
    cfg = config(talos={"version": "v1.12.0"})
    ccm = cfg.addons.hcloud_ccm.model_copy(update={"version": "1.27.0"})
    cfg = cfg.model_copy(update={"addons": cfg.addons.model_copy(update={"hcloud_ccm": ccm})})
    problems = version_problems(cfg)
    assert [p.subject for p in problems] == ["addons.hcloud_ccm.version"]
    assert "1.30.1" in problems[0].problem + problems[0].fix


def test_node_versions_report_only_the_nodes_that_differ() -> None:
    cfg = config(talos={"version": "v1.12.0"}, kubernetes={"version": "1.35.0"})
    found = node_version_problems(
        cfg,
        {"cp-1": "v1.12.0", "cp-2": "v1.11.3"},
        {"cp-1": "v1.35.0", "cp-2": "v1.35.0", "w-1": "v1.34.1"},
    )
    assert [(p.subject, p.problem) for p in found] == [
        ("cp-2", "runs Talos v1.11.3, cluster.yaml says v1.12.0"),
        ("w-1", "runs Kubernetes v1.34.1, cluster.yaml says v1.35.0"),
    ]
    assert all("hk8s upgrade" in p.fix for p in found)


@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, None), (3650 - 10, "expires in "), (3650 + 1, "expired on")],
)
def test_certificates_expired_or_expiring_within_30_days(age: int, expected: str | None) -> None:
    ca = create_ca(
        algorithm=KeyAlgorithm.ED25519, organization="x", now=NOW - dt.timedelta(days=age)
    )
    found = certificate_problems([("os CA", ca.cert, "rotate")], NOW)
    if expected is None:
        assert found == []
    else:
        [problem] = found
        assert expected in problem.problem and problem.fix == "rotate"


def test_etcd_alarms_are_cluster_wide_and_reported_once_under_their_member() -> None:
    alarm = ("memberID:2 alarm:NOSPACE ",)
    found = etcd_problems(
        {"cp-1": status(1, errors=alarm), "cp-2": status(2, errors=alarm), "cp-3": "refused"},
        ["cp-1", "cp-2", "cp-3"],
    )
    assert [(p.subject, p.problem) for p in found] == [
        ("cp-3", "etcd does not answer: refused"),
        ("cp-2", "etcd alarm:NOSPACE is raised"),
    ]


def test_etcd_without_leader_is_a_problem() -> None:
    [problem] = etcd_problems({"cp-1": status(1, leader=0)}, ["cp-1"])
    assert "no leader" in problem.problem


def rule(port: str, *sources: str) -> FirewallRule:
    return FirewallRule("in", "tcp", port, tuple(sources))


def test_firewall_admits_the_operator_through_any_covering_cidr() -> None:
    fw = Firewall(1, "demo-fw", rules=(rule("6443", "203.0.113.0/24"), rule("50000", "0.0.0.0/0")))
    assert firewall_problems(fw, "203.0.113.7", "demo-fw") == []
    [problem] = firewall_problems(fw, "198.51.100.1", "demo-fw")
    assert problem.subject == "demo-fw port 6443" and "198.51.100.1" in problem.problem
    assert firewall_problems(fw, None, "demo-fw") == []  # unknown IP: nothing to say
    assert "does not exist" in firewall_problems(None, "1.2.3.4", "demo-fw")[0].problem


def test_orphans_are_labelled_resources_the_config_does_not_account_for() -> None:
    found = orphan_problems(
        {"server": ["demo-cp-1", "demo-old-1"], "network": ["demo"]},
        {"server": {"demo-cp-1"}, "network": {"demo"}},
    )
    assert [p.subject for p in found] == ["server demo-old-1"]


JOBS = {"hcloud_ccm": ("kube-system", "hk8s-addon-hcloud-ccm-abc")}


def test_a_deployed_chart_outside_the_matrix_is_one_problem_with_the_fix() -> None:
    """cluster.yaml's CCM is fine, but the cluster runs one older than Hetzner's minimum (a
    ``helm upgrade`` by hand): only reading Helm's releases shows it."""
    cfg = config(talos={"version": "v1.12.0"})
    ccm = cfg.addons.hcloud_ccm.version
    found = deployed_chart_problems(
        cfg, {"hcloud-cloud-controller-manager": "1.27.0", "cilium": "9.9.9"}, JOBS
    )
    assert [(p.check, p.subject) for p in found] == [
        ("versions", "deployed hcloud-cloud-controller-manager chart 1.27.0")
    ]
    assert found[0].problem.startswith("is older than 1.30.1")
    assert "delete job hk8s-addon-hcloud-ccm-abc" in found[0].fix
    assert f"installs chart {ccm}" in found[0].fix


def test_a_deployed_chart_equal_to_cluster_yamls_is_left_to_the_config_check() -> None:
    cfg = config(talos={"version": "v1.12.0"})
    ccm = cfg.addons.hcloud_ccm.model_copy(update={"version": "1.27.0"})
    cfg = cfg.model_copy(update={"addons": cfg.addons.model_copy(update={"hcloud_ccm": ccm})})
    deployed = {"hcloud-cloud-controller-manager": "1.27.0"}
    assert deployed_chart_problems(cfg, deployed, JOBS) == []
    assert [p.subject for p in version_problems(cfg)] == ["addons.hcloud_ccm.version"]


def test_a_deployed_chart_inside_the_matrix_passes() -> None:
    cfg = config(talos={"version": "v1.12.0"})
    assert deployed_chart_problems(cfg, {"hcloud-cloud-controller-manager": "1.30.1"}, JOBS) == []


BACKUP = {
    "schedule": "0 * * * *",
    "endpoint": "https://fsn1.your-objectstorage.com",
    "bucket": "demo-backups",
    "region": "fsn1",
    "age_public_key": "age1v4k20f9e4yk722p9230qe66rhtqzy4xfa56jtsy7l2h9f3j9vvhqvejghl",
}


def cronjob(created: str, succeeded: str | None) -> dict[str, Any]:
    status = {"lastSuccessfulTime": succeeded} if succeeded else {}
    return {"metadata": {"creationTimestamp": created}, "status": status}


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        # hourly; now is 00:00 on the 7th: the last two runs were 23:00 and 00:00
        (cronjob("2026-12-01T00:00:00Z", "2026-12-07T00:00:05Z"), None),
        (cronjob("2026-12-01T00:00:00Z", "2026-12-06T23:00:04Z"), None),  # one blip is fine
        (cronjob("2026-12-01T00:00:00Z", "2026-12-06T21:00:04Z"),
         "the last successful backup was at 2026-12-06 21:00 UTC"),
        (cronjob("2026-12-01T00:00:00Z", None),
         "no backup has succeeded since 2026-12-06 23:00 UTC"),
        (cronjob("2026-12-06T23:30:00Z", None), None),  # not scheduled twice yet
        (None, "the CronJob is missing"),
    ],
)  # fmt: skip
def test_backups_must_have_succeeded_recently(job: Any, expected: str | None) -> None:
    from hk8s.controller.doctor._checks import backup_problems

    problems = backup_problems(config(backup=BACKUP), job, NOW)
    if expected is None:
        assert problems == []
    else:
        [problem] = problems
        assert problem.check == "backups" and expected in problem.problem
        assert "hk8s create" in problem.fix or "kubectl" in problem.fix


def test_no_backup_section_no_backup_problems() -> None:
    from hk8s.controller.doctor._checks import backup_problems

    assert backup_problems(config(), None, NOW) == []
