"""The API verbs on stored objects: get, list, create, update, patch, apply, delete, evict.

This is the registry layer of kube-apiserver (generic ``Store`` + per-kind strategies) without
HTTP: the server module parses requests into these calls, and the simulated controllers use the
same calls, so a controller's write looks to a client exactly like a real one.
"""

from __future__ import annotations

import copy
import json
import random
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.sim.kube import _resources as res
from hk8s.sim.kube._defaults import default_object, initial_status, validate_object
from hk8s.sim.kube._disruption import budget_status, matching_budgets, pod_ready
from hk8s.sim.kube._fields import apply, track_update
from hk8s.sim.kube._patch import json_patch, merge_patch, strategic_merge_patch
from hk8s.sim.kube._selectors import parse_field_selector, parse_label_selector
from hk8s.sim.kube._status import KubeError, success_status

if TYPE_CHECKING:
    from hk8s.sim.kube._resources import ResourceType
    from hk8s.sim.kube._store import Store

__all__ = ["Verbs"]

Obj = dict[str, Any]
_SERVER_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apiserver/pkg/storage/names: no vowels


def _patch_options_invalid(field: str, reason: str, message: str) -> KubeError:
    return KubeError.invalid("PatchOptions", "meta.k8s.io", "", [(field, reason, message)])


class Verbs:
    def __init__(self, store: Store, *, seed: int | None = None) -> None:
        self.store = store
        self._random = random.Random(seed)

    def random_suffix(self, length: int = 5) -> str:
        return "".join(self._random.choice(_NAME_CHARS) for _ in range(length))

    # -- reads ----------------------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt, ns, name)
        if obj is None:
            raise KubeError.not_found(rt.plural, rt.group, name)
        return obj

    def list(
        self,
        rt: ResourceType,
        ns: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rt.kind)
        return [
            o
            for o in self.store.list(rt, ns)
            if labels(o["metadata"].get("labels") or {}) and fields(o)
        ]

    # -- writes ---------------------------------------------------------------------------
    def _check_identity(self, rt: ResourceType, ns: str, body: Any, name: str | None) -> Obj:
        if not isinstance(body, dict):
            raise KubeError.bad_request("the body of the request must be an object")
        version, kind = body.get("apiVersion"), body.get("kind")
        if version and version != rt.api_version:
            raise KubeError.bad_request(
                f"the API version in the data ({version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise KubeError.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        meta = body.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace", ns) != ns:
                raise KubeError.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if name is not None and meta.get("name", name) != name:
            raise KubeError.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        if name is not None:
            meta["name"] = name
        return body

    def _check_namespace(self, rt: ResourceType, ns: str, name: str) -> None:
        if not rt.namespaced:
            return
        namespace = self.store.get(res.by_kind("v1", "Namespace"), "", ns)
        if namespace is None:
            raise KubeError.not_found("namespaces", "", ns)
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            raise KubeError(
                403,
                "Forbidden",
                f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace '
                f"{ns} because it is being terminated",
                {"name": name, "kind": rt.plural},
            )

    def create(self, rt: ResourceType, ns: str, body: Any, *, manager: str) -> Obj:
        obj = self._check_identity(rt, ns, copy.deepcopy(body), None)
        meta = obj["metadata"]
        for key in _SERVER_META:
            meta.pop(key, None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + self.random_suffix()
        default_object(rt.kind, obj)
        validate_object(rt.kind, rt.group, obj)
        self._check_namespace(rt, ns, meta["name"])
        if self.store.get(rt, ns, meta["name"]) is not None:
            raise KubeError.already_exists(rt.plural, rt.group, meta["name"])
        if rt.kind == "Pod":
            self._check_service_account(ns, obj)
            _default_toleration_seconds(obj)
        if rt.kind == "Service":
            self._allocate_cluster_ip(obj)
        if rt.has_status and rt.kind != "Node":
            obj["status"] = initial_status(rt.kind)
        track_update(
            None,
            obj,
            manager=manager,
            api_version=rt.api_version,
            now=self.store.timestamp(),
            has_status=rt.has_status,
        )
        return self.store.create(rt, obj)

    def _allocate_cluster_ip(self, service: Obj) -> None:
        """The service IP allocator: a free address of the service CIDR (10.96.0.0/12)."""
        spec = service.setdefault("spec", {})
        if spec.get("clusterIP") or spec.get("type") == "ExternalName":
            spec.setdefault("clusterIPs", [spec["clusterIP"]] if spec.get("clusterIP") else [])
            return
        used = {
            (s.get("spec") or {}).get("clusterIP")
            for s in self.store.peek(res.by_kind("v1", "Service"))
        }
        for index in range(11, 1 << 20):
            address = f"10.{96 + (index >> 16)}.{(index >> 8) & 0xFF}.{index & 0xFF}"
            if address not in used:
                spec["clusterIP"], spec["clusterIPs"] = address, [address]
                break
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    def _check_service_account(self, ns: str, pod: Obj) -> None:
        """The ServiceAccount admission plugin: a pod's named account must exist."""
        account = (pod.get("spec") or {}).get("serviceAccountName")
        sa_rt = res.by_kind("v1", "ServiceAccount")
        if account and account != "default" and self.store.get(sa_rt, ns, account) is None:
            name = pod["metadata"]["name"]
            raise KubeError(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: error looking up service account {ns}/{account}: '
                f'serviceaccount "{account}" not found',
                {"name": name, "kind": "pods"},
            )

    def _finish_update(
        self, rt: ResourceType, old: Obj, new: Obj, *, manager: str | None, subresource: str
    ) -> Obj:
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new["status"] = status if status is not None else {}
        elif rt.has_status:
            new["status"] = copy.deepcopy(old.get("status") or {})
        meta = new.setdefault("metadata", {})
        meta["name"], meta["namespace"] = old["metadata"]["name"], old["metadata"].get("namespace")
        if not rt.namespaced:
            meta.pop("namespace", None)
        default_object(rt.kind, new)
        validate_object(rt.kind, rt.group, new)
        if manager is not None:
            track_update(
                old,
                new,
                manager=manager,
                api_version=rt.api_version,
                now=self.store.timestamp(),
                subresource=subresource,
                has_status=rt.has_status,
            )
        # manager None: server-side apply already computed managedFields.
        return self.store.update(rt, new, old)

    def _check_version(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise KubeError.conflict(
                rt.plural,
                rt.group,
                old["metadata"]["name"],
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )

    def replace(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        *,
        manager: str | None,
        subresource: str = "",
    ) -> Obj:
        new = self._check_identity(rt, ns, copy.deepcopy(body), name)
        old = self.get(rt, ns, name)
        self._check_version(rt, old, new)
        for key in _SERVER_META:
            if key != "managedFields":
                new["metadata"].pop(key, None)
        return self._finish_update(rt, old, new, manager=manager, subresource=subresource)

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        raw: bytes,
        content_type: str,
        *,
        manager: str | None,
        force: bool | None,
        subresource: str = "",
    ) -> Obj:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/apply-patch+yaml":
            if not manager:
                raise _patch_options_invalid(
                    "fieldManager",
                    "FieldValueRequired",
                    "Required value: is required for apply patch",
                )
            return self._apply(rt, ns, name, raw, manager, bool(force), subresource)
        if force is not None:
            raise _patch_options_invalid(
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
            )
        try:
            patch = json.loads(raw or b"null")
        except ValueError as exc:
            raise KubeError.bad_request(f"error decoding patch: {exc}") from exc
        old = self.get(rt, ns, name)
        if media == "application/merge-patch+json":
            new = merge_patch(old, patch)
        elif media == "application/strategic-merge-patch+json":
            new = strategic_merge_patch(old, patch)
        elif media == "application/json-patch+json":
            new = json_patch(old, patch)
        else:
            raise KubeError.unsupported_media_type(content_type)
        if not isinstance(new, dict):
            raise KubeError.bad_request("patch did not produce an object")
        self._check_version(rt, old, new)
        new["metadata"] = {
            **new.get("metadata", {}),
            **{k: old["metadata"][k] for k in _SERVER_META if k in old["metadata"]},
        }
        return self._finish_update(
            rt, old, new, manager=manager or "unknown", subresource=subresource
        )

    def _apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        raw: bytes,
        manager: str,
        force: bool,
        subresource: str,
    ) -> Obj:
        try:
            body = yaml.safe_load(raw or b"")
        except yaml.YAMLError as exc:
            raise KubeError.bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
            raise KubeError.bad_request("apply patches must specify apiVersion and kind")
        body = self._check_identity(rt, ns, body, name)
        old = self.store.get(rt, ns, name)
        now = self.store.timestamp()
        if old is None:
            self._check_namespace(rt, ns, name)
            created = apply(
                None,
                body,
                manager=manager,
                force=force,
                api_version=rt.api_version,
                now=now,
                has_status=rt.has_status,
            )
            # Managed fields describe the request as sent; defaults come after (as upstream).
            default_object(rt.kind, created)
            validate_object(rt.kind, rt.group, created)
            if rt.has_status and rt.kind != "Node":
                created["status"] = initial_status(rt.kind)
            return self.store.create(rt, created)
        self._check_version(rt, old, body)
        new = apply(
            old,
            body,
            manager=manager,
            force=force,
            api_version=rt.api_version,
            now=now,
            has_status=rt.has_status and subresource != "status",
        )
        return self._finish_update(rt, old, new, manager=None, subresource=subresource)

    # -- delete ---------------------------------------------------------------------------
    def delete(self, rt: ResourceType, ns: str, name: str, propagation: str | None = None) -> Obj:
        obj = self.get(rt, ns, name)
        if rt.kind == "Namespace":
            # The namespace controller empties it, then removes it (finalizer "kubernetes").
            obj["metadata"]["deletionTimestamp"] = self.store.timestamp()
            obj["status"] = {"phase": "Terminating"}
            return self.store.update(rt, obj, self.get(rt, ns, name))
        # batch/v1 Jobs orphan their pods by default (jobStrategy.DefaultGarbageCollectionPolicy).
        policy = propagation or ("Orphan" if rt.kind == "Job" else "Background")
        uid = obj["metadata"]["uid"]
        if policy == "Orphan":
            self._orphan(uid)
        elif policy == "Foreground":
            self.delete_dependents(uid)
        gone = self.store.delete(rt, ns, name)
        assert gone is not None
        if rt.kind == "Pod":
            gone["metadata"]["deletionTimestamp"] = self.store.timestamp()
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
            return gone
        return success_status(name, rt.plural, rt.group, uid)

    def _orphan(self, uid: str) -> None:
        for rt, stored in _dependents(self.store, uid):
            old, obj = copy.deepcopy(stored), copy.deepcopy(stored)
            refs = [r for r in obj["metadata"]["ownerReferences"] if r.get("uid") != uid]
            obj["metadata"]["ownerReferences"] = refs
            if not refs:
                del obj["metadata"]["ownerReferences"]
            self.store.update(rt, obj, old)

    def delete_dependents(self, uid: str) -> None:
        for rt, obj in _dependents(self.store, uid):
            meta = obj["metadata"]
            if self.store.get(rt, meta.get("namespace", ""), meta["name"]) is not None:
                self.delete_dependents(meta["uid"])
                self.store.delete(rt, meta.get("namespace", ""), meta["name"])

    # -- eviction -------------------------------------------------------------------------
    def evict(self, ns: str, name: str) -> Obj:
        """pkg/registry/core/pod/storage/eviction.go: honour the pod's disruption budget."""
        pods_rt, pdb_rt = res.by_kind("v1", "Pod"), res.by_kind("policy/v1", "PodDisruptionBudget")
        pod = self.get(pods_rt, ns, name)
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed", "Pending"):
            budgets = matching_budgets(self.store.list(pdb_rt, ns), pod)
            if len(budgets) > 1:
                raise KubeError(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.",
                )
            if budgets:
                self._check_budget(pdb_rt, budgets[0], pod)
        self.delete(pods_rt, ns, name)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def _check_budget(self, pdb_rt: ResourceType, pdb: Obj, pod: Obj) -> None:
        status = budget_status(self.store, pdb, self.store.list(res.by_kind("v1", "Pod")))
        healthy, desired = status["currentHealthy"], status["desiredHealthy"]
        # unhealthyPodEvictionPolicy IfHealthyBudget (the default): an unready pod may go
        # while the budget is met.
        if not pod_ready(pod) and healthy >= desired:
            return
        if status["disruptionsAllowed"] <= 0:
            cause = {
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {pdb['metadata']['name']} needs {desired} "
                f"healthy pods and has {healthy} currently",
            }
            raise KubeError.too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.", 0, [cause]
            )
        old = copy.deepcopy(pdb)
        status["disruptionsAllowed"] -= 1
        status["disruptedPods"] = {pod["metadata"]["name"]: self.store.timestamp()}
        pdb["status"] = status
        self.store.update(pdb_rt, pdb, old)


def _dependents(store: Store, uid: str) -> list[tuple[ResourceType, Obj]]:
    return [
        (rt, obj)
        for rt in res.RESOURCES
        for obj in store.peek(rt)
        if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
    ]


def _default_toleration_seconds(pod: Obj) -> None:
    """The DefaultTolerationSeconds admission plugin: tolerate not-ready and unreachable
    nodes for 300 s unless the pod already tolerates them (an empty key tolerates all)."""
    tolerations = pod.setdefault("spec", {}).setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(
            t.get("key", "") in (key, "") and t.get("effect", "") in ("NoExecute", "")
            for t in tolerations
        ):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
