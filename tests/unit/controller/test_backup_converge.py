"""create's backup step: the Talos ServiceAccount is applied only once the API server serves
its kind. Talos registers serviceaccounts.talos.dev asynchronously after a control plane gets
kubernetesTalosAPIAccess, which create has just applied; a real kube-apiserver answers 404
until the CRD is established (seen against it in tests/e2e/day2/test_backups.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.config import parse_config
from hk8s.controller._backup import converge_backup
from hk8s.controller._waits import Waiter
from hk8s.model import ManualClock, Timing
from hk8s.pki.sigv4 import Credentials

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hk8s.providers.k8s import ObjectRef

CONFIG = """\
name: demo
location: fsn1
control_plane: {count: 1}
backup:
  schedule: "0 * * * *"
  endpoint: https://fsn1.your-objectstorage.com
  bucket: demo-backups
  region: fsn1
  age_public_key: age1v4k20f9e4yk722p9230qe66rhtqzy4xfa56jtsy7l2h9f3j9vvhqvejghl
"""


class RecordingKube:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def wait_served(
        self, api_version: str, kind: str, *, timeout: float | None = None
    ) -> None:
        self.calls.append(f"wait {api_version} {kind}")

    async def apply(
        self, objects: Iterable[Mapping[str, Any]], *, field_manager: str = "hk8s"
    ) -> list[ObjectRef]:
        self.calls += [f"apply {o['kind']}" for o in objects]
        return []

    async def delete(self, *args: Any, **kwargs: Any) -> bool:
        return False


async def test_the_talos_account_is_applied_once_its_kind_is_served() -> None:
    kube = RecordingKube()
    config = parse_config(CONFIG, source="cluster.yaml")
    waiter = Waiter(ManualClock(), Timing())
    await converge_backup(kube, config, waiter, credentials=Credentials("a", "b"))  # type: ignore[arg-type]
    assert kube.calls[0] == "wait talos.dev/v1alpha1 ServiceAccount"
    assert "apply ServiceAccount" in kube.calls[1:]
