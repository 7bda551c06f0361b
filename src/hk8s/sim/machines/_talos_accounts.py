"""Talos API access from Kubernetes: the ``serviceaccounts.talos.dev`` CRD and its controller.

A Talos control plane whose machine config enables ``kubernetesTalosAPIAccess`` (1.11-1.13
``machine.features``, 1.14 ``KubeTalosAPIAccessConfig``) applies the CRD with its bootstrap
manifests (``k8stemplates.TalosServiceAccountCRDTemplate``: namespaced, short name ``tsa``,
``spec.roles`` and ``status.failureReason``, no status subresource) and runs
``kubeaccess/serviceaccount/crd_controller.go``, which answers each ``talos.dev/v1alpha1``
ServiceAccount with a Secret of its name (controlled by the account, so the garbage collector
removes it with the account) holding ``config``: a talosconfig (context ``default``, endpoint
``talos.default``) whose client certificate, signed by the OS CA, carries the account's roles.
A namespace or role the machine config does not allow, missing roles, or a Secret of that name
it does not control are written to ``status.failureReason`` with upstream's messages, and the
reason is cleared once the account is served. Certificates live 6 hours and are renewed
when less than one is left (``certTTL``, ``certRenewThreshold``).

``TalosAccounts`` plays both as an API client of the real server: while ``access()`` (the
running control planes' grant) is on it creates the CRD once and reconciles every account
every ``interval`` wall seconds (the upstream informers resync each minute and react to
events; a short poll stands in for both).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from hk8s.pki import CertAndKey, generate_talosconfig, render_talosconfig
from hk8s.sim.k8s import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.sim.k8s import KubeClient

__all__ = ["CRD", "TalosAccess", "TalosAccounts"]

Obj = dict[str, Any]
log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL, KIND = "talos.dev", "v1alpha1", "serviceaccounts", "ServiceAccount"
_ACCOUNTS = f"/apis/{GROUP}/{VERSION}/{PLURAL}"
_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ENDPOINT = "talos.default"  # constants.KubernetesTalosAPIServiceName + "." + its namespace
CERT_TTL = dt.timedelta(hours=6)  # crd_controller.go certTTL
RENEW_BEFORE = dt.timedelta(hours=1)  # certRenewThreshold

CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "conversion": {"strategy": "None"},
        "group": GROUP,
        "names": {
            "kind": KIND,
            "listKind": f"{KIND}List",
            "plural": PLURAL,
            "singular": "serviceaccount",
            "shortNames": ["tsa"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "roles": {"type": "array", "items": {"type": "string"}}
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"failureReason": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@dataclass(frozen=True)
class TalosAccess:
    """What the control planes grant (allowed roles and namespaces), and the OS CA Talos
    signs the accounts' client certificates with."""

    roles: tuple[str, ...]
    namespaces: tuple[str, ...]
    os_ca_crt: bytes
    os_ca_key: bytes


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(
        r.get("uid") == uid and r.get("controller")
        for r in obj["metadata"].get("ownerReferences") or []
    )


def _roles_of(secret: Obj) -> set[str] | None:
    """The roles of the talosconfig in ``secret``; None when ``needsUpdate`` would renew it
    (unreadable, another endpoint, or its certificate within an hour of expiry)."""
    try:
        doc = yaml.safe_load(base64.b64decode((secret.get("data") or {})["config"]).decode())
        context = doc["contexts"][doc.get("context") or "default"]
        if context.get("endpoints") != [ENDPOINT]:
            return None
        cert = x509.load_pem_x509_certificate(base64.b64decode(context["crt"]))
    except (KeyError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return None
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return None
    return {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}


def failure(account: Obj, access: TalosAccess, secret: Obj | None) -> str | None:
    """Upstream's ``syncHandler`` checks, in its order, with its messages."""
    meta = account["metadata"]
    ns, name = meta["namespace"], meta["name"]
    roles = (account.get("spec") or {}).get("roles")
    if secret is not None and not _controlled_by(secret, account):
        return f"Secret already exists and is not managed by controller: {ns}/{name}"
    if roles is None:
        return "Roles not found"
    if ns not in access.namespaces:
        return f"Namespace is not allowed: {ns}"
    unallowed = [str(r) for r in roles if r not in access.roles]
    if unallowed:
        return f"Roles not allowed: [{' '.join(unallowed)}]"
    return None


class TalosAccounts:
    def __init__(
        self,
        api: KubeClient,
        access: Callable[[], TalosAccess | None],
        *,
        interval: float = 1.0,
    ) -> None:
        self.api, self.access, self.interval = api, access, interval
        self._crd = False

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (ApiError, OSError, TimeoutError) as exc:
                log.debug("Talos service accounts' pass failed: %r", exc)
            except Exception:
                log.exception("Talos service accounts' pass failed")
            await asyncio.sleep(self.interval)

    async def reconcile(self) -> None:
        access = self.access()
        if access is None:
            return  # the feature is off: no control plane runs the controller
        if not self._crd:
            try:
                await self.api.create(_CRDS, CRD)
            except ApiError as exc:
                if exc.code != 409:
                    raise
            self._crd = True
        try:
            accounts = (await self.api.get(_ACCOUNTS)).get("items") or []
        except ApiError as exc:
            if exc.code == 404:
                return  # the CRD is not established yet
            raise
        for account in accounts:
            await self._sync(account, access)

    async def _sync(self, account: Obj, access: TalosAccess) -> None:
        meta = account["metadata"]
        ns, name = meta["namespace"], meta["name"]
        secrets = f"/api/v1/namespaces/{ns}/secrets"
        secret = await self.api.get_or_none(f"{secrets}/{name}")
        reason = failure(account, access, secret)
        if reason is None:
            roles = sorted({str(r) for r in account["spec"]["roles"]})
            data = None if secret is not None and _roles_of(secret) == set(roles) else (
                self._talosconfig(access, roles)
            )  # fmt: skip
            if data is not None and secret is None:
                await self.api.create(secrets, self._secret(account, data))
            elif data is not None and secret is not None:
                secret["data"] = {**(secret.get("data") or {}), "config": data}
                await self.api.replace(f"{secrets}/{name}", secret)
        status = dict(account.get("status") or {})
        if reason is None:
            status.pop("failureReason", None)
        else:
            status["failureReason"] = reason
        if status != (account.get("status") or {}):
            # No status subresource: upstream updates the whole object.
            await self.api.replace(f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/{name}",
                                   {**account, "status": status})  # fmt: skip

    @staticmethod
    def _talosconfig(access: TalosAccess, roles: list[str]) -> str:
        os_ca = CertAndKey.from_pem(access.os_ca_crt, access.os_ca_key)
        config = generate_talosconfig(
            "default",
            os_ca,
            endpoints=[ENDPOINT],
            roles=roles,
            now=dt.datetime.now(dt.UTC),
            validity=CERT_TTL,
        )
        return base64.b64encode(render_talosconfig(config).encode()).decode()

    @staticmethod
    def _secret(account: Obj, data: str) -> Obj:
        meta = account["metadata"]
        owner = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "ownerReferences": [owner]},
            "type": "Opaque",
            "data": {"config": data},
        }  # fmt: skip
