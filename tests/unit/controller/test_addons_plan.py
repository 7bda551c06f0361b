"""`plan` lists the addon charts `create` would install or move, read from Helm's releases."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from hk8s.config import ADDON_CHARTS, parse_config
from hk8s.controller import AddonsComponent, Reconciler
from hk8s.errors import UnavailableError

CONFIG = "name: demo\nlocation: fsn1\n"


def release_secret(release: str, version: str, revision: int, status: str) -> dict[str, Any]:
    """A Secret as helm 3 stores a release revision (base64 of base64(gzip(json)))."""
    payload = {"name": release, "version": revision,
               "chart": {"metadata": {"name": release, "version": version}}}  # fmt: skip
    blob = base64.b64encode(gzip.compress(json.dumps(payload).encode()))
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision}",
            "labels": {
                "owner": "helm",
                "name": release,
                "status": status,
                "version": str(revision),
            },
        },
        "data": {"release": base64.b64encode(blob).decode()},
    }


class FakeKube:
    def __init__(self, secrets: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.secrets, self.error = secrets, error
        self.selectors: list[str | None] = []
        self.closed = False
        self.cronjob: dict[str, Any] | None = None

    async def get(self, api_version: str, kind: str, name: str, *,
                  namespace: str | None = None) -> dict[str, Any] | None:  # fmt: skip
        assert (api_version, kind, namespace) == ("batch/v1", "CronJob", "kube-system")
        return self.cronjob

    async def list(self, api_version: str, kind: str, *, namespace: str | None = None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        self.selectors.append(label_selector)
        if self.error:
            raise self.error
        status = dict(s.split("=") for s in (label_selector or "").split(","))["status"]
        return [s for s in self.secrets if s["metadata"]["labels"]["status"] == status]

    async def close(self) -> None:
        self.closed = True


def deployed_defaults() -> list[dict[str, Any]]:
    return [release_secret(c.release, c.version, 1, "deployed") for c in ADDON_CHARTS.values()]


async def plan_for(config_text: str, kube: FakeKube | None) -> tuple[list[str], list[str]]:
    async def connect() -> FakeKube | None:
        return kube

    component = AddonsComponent(parse_config(config_text), connect)  # type: ignore[arg-type]
    reconciler = Reconciler([component])
    plan = await reconciler.plan()
    lines = [f"{op.describe()} ({', '.join(map(str, op.changes))})" for op in plan.operations]
    return lines, reconciler.warnings()


async def test_a_changed_pin_is_an_update_from_the_deployed_version() -> None:
    secrets = deployed_defaults()
    # An older revision of cilium, superseded, must not count.
    secrets.append(release_secret("cilium", "1.18.4", 0, "superseded"))
    kube = FakeKube(secrets)
    lines, warnings = await plan_for(CONFIG + "addons:\n  cilium: {version: 1.20.1}\n", kube)
    assert lines == [
        "update addon cilium: chart cilium 1.20.2 is installed, 1.20.1 is pinned "
        "(chart version: 1.20.2 -> 1.20.1)"
    ]
    assert warnings == [] and kube.closed
    assert set(kube.selectors) == {"owner=helm,status=deployed"}


async def test_deployed_defaults_plan_nothing_and_a_missing_release_is_created() -> None:
    assert await plan_for(CONFIG, FakeKube(deployed_defaults())) == ([], [])
    without_csi = [s for s in deployed_defaults() if "csi" not in s["metadata"]["name"]]
    lines, _ = await plan_for(CONFIG, FakeKube(without_csi))
    assert lines == [
        f"create addon hcloud_csi: chart hcloud-csi {ADDON_CHARTS['hcloud_csi'].version} is "
        f"not installed (chart version: none -> {ADDON_CHARTS['hcloud_csi'].version})"
    ]
    # A disabled addon is not planned, whatever is deployed.
    disabled = CONFIG + "addons:\n  hcloud_csi: {enabled: false}\n"
    assert await plan_for(disabled, FakeKube(without_csi)) == ([], [])


async def test_no_cluster_yet_plans_no_addons_and_an_unreadable_api_warns() -> None:
    assert await plan_for(CONFIG, None) == ([], [])
    kube = FakeKube([], error=UnavailableError("the Kubernetes API did not answer"))
    lines, warnings = await plan_for(CONFIG, kube)
    assert lines == []
    assert warnings == ["addons not checked: the Kubernetes API did not answer"]
    assert kube.closed


BACKUP = """\
backup:
  schedule: "0 * * * *"
  endpoint: https://fsn1.your-objectstorage.com
  bucket: demo-backups
  region: fsn1
  age_public_key: age1v4k20f9e4yk722p9230qe66rhtqzy4xfa56jtsy7l2h9f3j9vvhqvejghl
"""


def applied_cronjob(config_text: str) -> dict[str, Any]:
    """The CronJob as create would have applied it for ``config_text``."""
    from hk8s.pki.sigv4 import Credentials
    from hk8s.providers.k8s import render_backup_manifests

    backup = render_backup_manifests(parse_config(config_text), credentials=Credentials("a", "b"))
    return next(o for o in backup.objects if o["kind"] == "CronJob")


async def test_backups_are_planned_created_updated_and_removed() -> None:
    kube = FakeKube(deployed_defaults())
    lines, _ = await plan_for(CONFIG + BACKUP, kube)
    assert lines == [
        "create etcd backup kube-system/hk8s-etcd-backup: talos-backup on schedule "
        "'0 * * * *' (schedule: none -> 0 * * * *, control planes' Talos API access: none -> "
        "os:etcd:backup from kube-system)"
    ]
    kube.cronjob = applied_cronjob(CONFIG + BACKUP)
    assert await plan_for(CONFIG + BACKUP, kube) == ([], [])
    daily = BACKUP.replace('"0 * * * *"', '"30 2 * * *"')
    lines, _ = await plan_for(CONFIG + daily, kube)
    assert lines == [
        "update etcd backup kube-system/hk8s-etcd-backup: backup settings in cluster.yaml "
        "changed (schedule: 0 * * * * -> 30 2 * * *)"
    ]
    other_bucket = BACKUP.replace("demo-backups", "elsewhere")
    lines, _ = await plan_for(CONFIG + other_bucket, kube)
    assert len(lines) == 1 and "changed (settings: " in lines[0]
    lines, _ = await plan_for(CONFIG, kube)
    assert lines == [
        "delete etcd backup kube-system/hk8s-etcd-backup: cluster.yaml has no backup section ()"
    ]
