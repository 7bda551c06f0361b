"""Scheduled backups end to end: ``backup:`` in cluster.yaml, ``plan`` and ``create`` install
talos-backup's CronJob, which the real kube-controller-manager runs (in wall-clock time); its
pod takes a snapshot through the Talos API with the os:etcd:backup service account Talos
answers and uploads it, age-encrypted, to the world's S3 store; ``hk8s etcd backups`` lists
and prunes them; ``restore --from s3://`` brings back what the backup held after etcd is lost;
removing ``backup:`` removes the CronJob.

A minutely schedule makes the controller's first run come within a wall minute; meanwhile
the other backups are taken as ``kubectl create job --from=cronjob/...`` takes one (a Job from
the jobTemplate, annotated ``cronjob.kubernetes.io/instantiate: manual``, owned by the
CronJob), so the test does not wait a minute per backup."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from hk8s.pki.age import decrypt, generate_identity
from hk8s.sim.world import S3_BUCKET_ENV, S3_ENDPOINT_ENV

from .test_etcd_restore import CONTROL_PLANES, configmaps, destroy_etcd, stored_configmaps

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from .conftest import Day2World

# What talos-backup names an upload: <prefix>/<cluster>-<RFC 3339 UTC>.snap.age
KEY = re.compile(r"^demo/demo-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap\.age$")
CRONJOB = "/apis/batch/v1/namespaces/kube-system/cronjobs/hk8s-etcd-backup"
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def stored(world: Day2World) -> dict[str, Any]:
    bucket = world.env[S3_BUCKET_ENV]
    return dict(world.threaded.call(lambda: world.world.s3.objects(bucket, "demo/")))


def cronjob(world: Day2World) -> dict[str, Any] | None:
    """The CronJob as the real API server holds it."""
    found = world.threaded.run(world.kube().api.get_or_none(CRONJOB))
    return None if found is None else dict(found)


def until(world: Day2World, check: Callable[[], Any], what: str, wall: float) -> Any:
    """``check()`` until it returns something truthy, polling every 10 world seconds (0.1
    wall), for at most ``wall`` seconds: the real controllers run in wall time."""
    deadline = time.monotonic() + wall
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        world.threaded.run(world.world.clock.sleep(10))
    raise AssertionError(f"timed out after {wall:.0f} s waiting for {what}")


def back_up_now(world: Day2World, name: str) -> dict[str, Any]:
    """``kubectl create job --from=cronjob/hk8s-etcd-backup <name>``; the Job once it is
    complete (its log in the failure otherwise)."""
    source = cronjob(world)
    assert source is not None
    template = source["spec"]["jobTemplate"]
    meta = template.get("metadata") or {}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": meta.get("labels") or {},
            "annotations": {
                **(meta.get("annotations") or {}),
                "cronjob.kubernetes.io/instantiate": "manual",
            },
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": source["metadata"]["name"],
                "uid": source["metadata"]["uid"], "controller": True,
            }],
        },
        "spec": template["spec"],
    }  # fmt: skip
    world.kube_create("/apis/batch/v1/namespaces/kube-system/jobs", job)

    def finished() -> dict[str, Any] | None:
        found = world.kube_get(f"/apis/batch/v1/namespaces/kube-system/jobs/{name}")
        conditions = (found.get("status") or {}).get("conditions") or []
        done = {c["type"] for c in conditions if c["status"] == "True"}
        return found if done & {"Complete", "Failed"} else None

    job = until(world, finished, f"Job {name}", wall=60)
    assert (job.get("status") or {}).get("succeeded") == 1, pod_logs(world, name)
    return job


def pod_logs(world: Day2World, job: str) -> str:
    pods = world.kube_items("/api/v1/namespaces/kube-system/pods", labelSelector=f"job-name={job}")
    return "".join(
        world.threaded.run(
            world.kube().api.text(
                f"/api/v1/namespaces/kube-system/pods/{p['metadata']['name']}/log"
            )
        )
        for p in pods
    )


def test_scheduled_backups_land_are_listed_pruned_and_restore(
    world: Day2World, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = generate_identity()
    original = world.config.read_text()
    world.config.write_text(
        original
        + f"""backup:
  schedule: "* * * * *"
  endpoint: {world.env[S3_ENDPOINT_ENV]}
  bucket: {world.env[S3_BUCKET_ENV]}
  region: fsn1
  age_public_key: {identity.recipient}
  retention: {{keep: 2}}
"""
    )
    planned = world.hk8s("plan", check=False)
    assert planned.returncode == 3, planned.stdout + planned.stderr
    assert "etcd backup:" in planned.stdout
    assert "create kube-system/hk8s-etcd-backup" in planned.stdout
    world.hk8s("create")
    installed = time.monotonic()
    assert world.hk8s("plan", check=False).returncode == 0  # converged
    job = cronjob(world)
    assert job is not None and job["spec"]["schedule"] == "* * * * *"

    # A backup taken after this object was written holds it.
    world.put_configmap("before-backup", {"v": "1"})
    back_up_now(world, "backup-now-1")
    found = stored(world)
    newest = max(found, key=lambda k: (found[k].last_modified, k))
    assert all(KEY.match(k) for k in found), sorted(found)
    snapshot = decrypt(found[newest].data, [identity])  # age-encrypted to our key
    assert len(snapshot) % 512 == 32  # etcd's snapshot with its SHA-256 trailer

    listed = json.loads(world.hk8s("etcd", "backups", "-o", "json").stdout)
    keys = [b["key"] for b in listed["backups"]]
    now = stored(world)
    assert set(found) <= set(keys) <= set(now)
    times = [now[k].last_modified for k in keys]
    assert times == sorted(times, reverse=True)  # newest first
    assert listed["backups"][0]["url"] == f"s3://{world.env[S3_BUCKET_ENV]}/{keys[0]}"
    assert newest in world.hk8s("etcd", "backups").stdout

    # Retention (keep: 2) once there are three.
    for n in range(2, 4):
        if len(stored(world)) < 3:
            back_up_now(world, f"backup-now-{n}")
    pruned = json.loads(world.hk8s("etcd", "backups", "--prune", "-o", "json").stdout)
    kept = {b["key"] for b in pruned["backups"]}
    assert len(kept) == 2 and pruned["pruned"]
    after = stored(world)
    assert kept <= set(after) and not set(pruned["pruned"]) & set(after)

    # The controller's own run, at the first minute after the CronJob was made (the manual
    # runs already set status.lastSuccessfulTime: the controller counts every Job it owns).
    def scheduled_run() -> list[dict[str, Any]]:
        jobs = world.kube_items("/apis/batch/v1/namespaces/kube-system/jobs")
        return [
            j for j in jobs
            if SCHEDULED in (j["metadata"].get("annotations") or {})
            and (j.get("status") or {}).get("succeeded") == 1
        ]  # fmt: skip

    left = max(5.0, 100 - (time.monotonic() - installed))
    runs = until(world, scheduled_run, "a scheduled backup", wall=left)
    scheduled = max(runs, key=lambda j: j["metadata"]["annotations"][SCHEDULED])
    completed = scheduled["status"]["completionTime"]

    def recorded() -> dict[str, Any] | None:
        status = (cronjob(world) or {}).get("status") or {}
        return status if status.get("lastSuccessfulTime", "") >= completed else None

    status = until(world, recorded, "the CronJob's status to record the run", wall=30)
    assert status["lastScheduleTime"] >= scheduled["metadata"]["annotations"][SCHEDULED]
    doctor = json.loads(world.hk8s("doctor", "-o", "json", check=False).stdout)
    [backups] = [c for c in doctor["checks"] if c["check"] == "backups"]
    assert backups["ok"], backups

    # Disaster: etcd lost everywhere; restore from the newest backup in object storage.
    listed = json.loads(world.hk8s("etcd", "backups", "-o", "json").stdout)
    source = listed["backups"][0]["url"]
    destroy_etcd(world)
    assert stored_configmaps(world) == []
    no_key = world.hk8s("etcd", "restore", "--from", source, "--yes", check=False)
    assert no_key.returncode == 2 and "no age identity" in no_key.stderr
    monkeypatch.setenv("HK8S_AGE_IDENTITY", str(identity))
    result = world.hk8s("etcd", "restore", "--from", source, "--yes", "-o", "json")
    assert json.loads(result.stdout)["etcd_members"] == CONTROL_PLANES
    restored = configmaps(world)
    assert restored["before-backup"] == {"v": "1"}
    assert str(identity) not in "".join(world.outputs)

    # A changed schedule is an update of the same CronJob.
    world.config.write_text(world.config.read_text().replace('"* * * * *"', '"30 2 * * *"'))
    planned = world.hk8s("plan", check=False)
    assert planned.returncode == 3 and "schedule: * * * * * -> 30 2 * * *" in planned.stdout
    world.hk8s("create")
    job = cronjob(world)
    assert job is not None and job["spec"]["schedule"] == "30 2 * * *"

    # Without backup: the CronJob and its Talos service account go.
    world.config.write_text(original)
    planned = world.hk8s("plan", check=False)
    assert "delete kube-system/hk8s-etcd-backup" in planned.stdout
    world.hk8s("create")
    assert cronjob(world) is None
