"""Scheduled backups end to end: ``backup:`` in cluster.yaml, ``plan`` and ``create`` install
talos-backup's CronJob; on schedule (the world's clock) its pod takes a snapshot through the
Talos API with the os:etcd:backup service account and uploads it, age-encrypted, to the
world's S3 store; ``hk8s etcd backups`` lists and prunes them; ``restore --from s3://`` brings
back what the backup held after etcd is lost; removing ``backup:`` removes the CronJob."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from hk8s.pki.age import decrypt, generate_identity
from hk8s.sim.world import S3_BUCKET_ENV, S3_ENDPOINT_ENV

from .test_etcd_restore import CONTROL_PLANES, configmaps, destroy_etcd

if TYPE_CHECKING:
    import pytest

    from .conftest import Day2World

# What talos-backup names an upload: <prefix>/<cluster>-<RFC 3339 UTC>.snap.age
KEY = re.compile(r"^demo/demo-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap\.age$")


def stored(world: Day2World) -> dict[str, Any]:
    bucket = world.env[S3_BUCKET_ENV]
    return dict(world.threaded.call(lambda: world.world.s3.objects(bucket, "demo/")))


def wait_for_backups(world: Day2World, count: int) -> dict[str, Any]:
    """Until the store holds ``count`` backups, on the world's clock (5 simulated minutes a
    step; the schedule is every 5 minutes)."""
    for _ in range(40):
        found = stored(world)
        if len(found) >= count:
            return found
        world.threaded.run(world.world.clock.sleep(60))
    raise AssertionError(f"{count} backup(s) never landed: {sorted(stored(world))}")


def cronjob(world: Day2World) -> dict[str, Any] | None:
    def read() -> dict[str, Any] | None:
        kube = world.kube()
        rt = kube.cluster.rt("batch/v1", "CronJob")
        found: dict[str, Any] | None = kube.store.get(rt, "kube-system", "hk8s-etcd-backup")
        return found

    result: dict[str, Any] | None = world.threaded.call(read)
    return result


def test_scheduled_backups_land_are_listed_pruned_and_restore(
    world: Day2World, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = generate_identity()
    original = world.config.read_text()
    world.config.write_text(
        original
        + f"""backup:
  schedule: "*/5 * * * *"
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
    assert world.hk8s("plan", check=False).returncode == 0  # converged
    job = cronjob(world)
    assert job is not None and job["spec"]["schedule"] == "*/5 * * * *"

    # A backup taken after this object was written holds it.
    landed = len(stored(world))
    world.put_configmap("before-backup", {"v": "1"})
    found = wait_for_backups(world, landed + 1)
    newest = max(found, key=lambda k: (found[k].last_modified, k))
    assert all(KEY.match(k) for k in found), sorted(found)
    snapshot = decrypt(found[newest].data, [identity])  # age-encrypted to our key
    assert len(snapshot) % 512 == 32  # etcd's snapshot with its SHA-256 trailer

    listed = json.loads(world.hk8s("etcd", "backups", "-o", "json").stdout)
    keys = [b["key"] for b in listed["backups"]]
    assert set(keys) == set(found) and keys[0] == newest  # newest first
    assert listed["backups"][0]["url"] == f"s3://{world.env[S3_BUCKET_ENV]}/{newest}"
    assert newest in world.hk8s("etcd", "backups").stdout

    doctor = json.loads(world.hk8s("doctor", "-o", "json", check=False).stdout)
    [backups] = [c for c in doctor["checks"] if c["check"] == "backups"]
    assert backups["ok"], backups

    # Retention (keep: 2) once there are three.
    found = wait_for_backups(world, 3)
    pruned = json.loads(world.hk8s("etcd", "backups", "--prune", "-o", "json").stdout)
    assert len(pruned["backups"]) == 2 and len(pruned["pruned"]) == len(found) - 2
    assert set(stored(world)) == {b["key"] for b in pruned["backups"]}

    # Disaster: etcd lost everywhere; restore from the newest backup in object storage.
    source = f"s3://{world.env[S3_BUCKET_ENV]}/{pruned['backups'][0]['key']}"
    destroy_etcd(world)
    assert configmaps(world) == {}
    no_key = world.hk8s("etcd", "restore", "--from", source, "--yes", check=False)
    assert no_key.returncode == 2 and "no age identity" in no_key.stderr
    monkeypatch.setenv("HK8S_AGE_IDENTITY", str(identity))
    result = world.hk8s("etcd", "restore", "--from", source, "--yes", "-o", "json")
    assert json.loads(result.stdout)["etcd_members"] == CONTROL_PLANES
    restored = configmaps(world)
    assert restored["before-backup"] == {"v": "1"}
    assert str(identity) not in "".join(world.outputs)

    # A changed schedule is an update of the same CronJob.
    world.config.write_text(world.config.read_text().replace('"*/5 * * * *"', '"30 2 * * *"'))
    planned = world.hk8s("plan", check=False)
    assert planned.returncode == 3 and "schedule: */5 * * * * -> 30 2 * * *" in planned.stdout
    world.hk8s("create")
    job = cronjob(world)
    assert job is not None and job["spec"]["schedule"] == "30 2 * * *"

    # Without backup: the CronJob and its Talos service account go.
    world.config.write_text(original)
    planned = world.hk8s("plan", check=False)
    assert "delete kube-system/hk8s-etcd-backup" in planned.stdout
    world.hk8s("create")
    assert cronjob(world) is None
