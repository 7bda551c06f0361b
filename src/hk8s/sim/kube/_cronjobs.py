"""The CronJob controller, and Talos' ServiceAccount controller (``talos.dev/v1alpha1``).

CronJobs (kube-controller-manager ``pkg/controller/cronjob``, as a client observes it): at
each scheduled time on the simulated clock (UTC, ``hk8s.model.cron``) a Job named
``<cronjob>-<minutes since the epoch>`` is made from ``jobTemplate``, owned by the CronJob,
with the ``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation; of several missed
times only the latest runs; ``concurrencyPolicy: Forbid`` skips a time while a Job is still
active; ``suspend`` stops it; finished Jobs beyond ``successfulJobsHistoryLimit`` (3) and
``failedJobsHistoryLimit`` (1) are deleted, oldest first; ``status.active``,
``lastScheduleTime`` and ``lastSuccessfulTime`` are kept.

Talos ServiceAccounts (Talos ``internal/app/machined/pkg/controllers/kubeaccess/
serviceaccount/crd_controller.go``), only while the control planes enable
kubernetesTalosAPIAccess: each gets a Secret of its name holding ``config``, a talosconfig
(context ``default``, endpoint ``talos.default``) whose client certificate, signed by the OS
CA, carries the account's ``spec.roles``; the Secret is owned by the account (deleting it
deletes the Secret). A namespace or role the machine config does not allow, or no roles, is
written to ``status.failureReason`` with upstream's message instead.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from hk8s.model.cron import CronError, parse_cron
from hk8s.pki import CertAndKey, generate_talosconfig, render_talosconfig

if TYPE_CHECKING:
    from hk8s.sim.kube._cluster import Cluster

__all__ = ["reconcile_cronjobs", "reconcile_talos_accounts"]

Obj = dict[str, Any]
_KCM = "kube-controller-manager"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
_MAX_MISSED = 100  # the controller gives up counting past 100 missed times


def _time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _STAMP).replace(tzinfo=dt.UTC)


def _finished(job: Obj) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def _ref(obj: Obj) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _latest_due(text: str, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    try:
        schedule = parse_cron(text)
    except CronError:
        return None
    due, moment = None, schedule.next_after(since)
    for _ in range(_MAX_MISSED):
        if moment > now:
            break
        due, moment = moment, schedule.next_after(moment)
    return due


def _new_job(cluster: Cluster, cronjob: Obj, when: dt.datetime) -> None:
    template = copy.deepcopy(cronjob["spec"].get("jobTemplate") or {})
    meta = template.get("metadata") or {}
    name = f"{cronjob['metadata']['name']}-{int(when.timestamp()) // 60}"
    namespace = str(cronjob["metadata"]["namespace"])
    job: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **meta,
            "name": name,
            "namespace": namespace,
            "ownerReferences": [_ref(cronjob)],
            "annotations": {
                **(meta.get("annotations") or {}),
                "batch.kubernetes.io/cronjob-scheduled-timestamp": when.strftime(_STAMP),
            },
        },
        "spec": template.get("spec") or {},
    }
    rt = cluster.rt("batch/v1", "Job")
    if cluster.store.get(rt, namespace, name) is None:
        cluster.verbs.create(rt, namespace, job, manager=_KCM)


def reconcile_cronjobs(cluster: Cluster) -> None:
    rt, jobs_rt = cluster.rt("batch/v1", "CronJob"), cluster.rt("batch/v1", "Job")
    now = _time(cluster.store.timestamp())
    for cronjob in cluster.store.list(rt):
        spec: Obj = cronjob["spec"]
        meta: Obj = cronjob["metadata"]
        status = copy.deepcopy(cronjob.get("status") or {})
        mine = [j for j in cluster.store.list(jobs_rt, meta["namespace"]) if _owned_by(j, cronjob)]
        active = [j for j in mine if _finished(j) is None]
        since = _time(status.get("lastScheduleTime") or meta["creationTimestamp"])
        due = None if spec.get("suspend") else _latest_due(spec["schedule"], since, now)
        if due is not None:
            if not (spec.get("concurrencyPolicy") == "Forbid" and active):
                _new_job(cluster, cronjob, due)
            status["lastScheduleTime"] = due.strftime(_STAMP)
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                            ("Failed", spec.get("failedJobsHistoryLimit", 1))):  # fmt: skip
            done = sorted(
                (j for j in mine if _finished(j) == kind),
                key=lambda j: j["metadata"]["creationTimestamp"],
            )
            for old in done[: max(0, len(done) - int(limit))]:
                cluster.verbs.delete(jobs_rt, meta["namespace"], old["metadata"]["name"],
                                     propagation="Background")  # fmt: skip
        complete = [
            (j.get("status") or {}).get("completionTime")
            for j in mine
            if _finished(j) == "Complete"
        ]
        if any(complete):
            status["lastSuccessfulTime"] = max(c for c in complete if c)
        refs = [
            {"apiVersion": "batch/v1", "kind": "Job", "name": j["metadata"]["name"],
             "namespace": meta["namespace"], "uid": j["metadata"]["uid"]}
            for j in active
        ]  # fmt: skip
        if refs:
            status["active"] = refs
        else:
            status.pop("active", None)
        cluster.set_status(rt, cronjob, status, manager=_KCM)


def _roles_of(secret: Obj) -> set[str] | None:
    try:
        doc = base64.b64decode((secret.get("data") or {})["config"]).decode()
        import yaml

        context = yaml.safe_load(doc)["contexts"]["default"]
        cert = x509.load_pem_x509_certificate(base64.b64decode(context["crt"]))
    except (KeyError, ValueError, TypeError):
        return None
    return {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}


def reconcile_talos_accounts(cluster: Cluster) -> None:
    rt, secrets = cluster.rt("talos.dev/v1alpha1", "ServiceAccount"), cluster.rt("v1", "Secret")
    accounts = cluster.store.list(rt)
    access = cluster.talos_access() if cluster.talos_access and accounts else None
    if access is None:
        return  # no accounts, or the feature is off: Talos runs no controller for the CRD
    for account in accounts:
        meta = account["metadata"]
        ns, name = meta["namespace"], meta["name"]
        roles = list((account.get("spec") or {}).get("roles") or [])
        failure = None
        if not roles:
            failure = "Roles not found"
        elif ns not in access.namespaces:
            failure = f"Namespace is not allowed: {ns}"
        elif unallowed := [r for r in roles if r not in access.roles]:
            failure = f"Roles not allowed: [{' '.join(unallowed)}]"
        existing = cluster.store.get(secrets, ns, name)
        if failure is None and existing is not None and not _owned_by(existing, account):
            failure = f"Secret {ns}/{name} already exists and is not managed by ServiceAccount"
        status = dict(account.get("status") or {})
        if failure is not None:
            status["failureReason"] = failure
        else:
            status.pop("failureReason", None)
        cluster.set_status(rt, account, status, manager="talos")
        if failure is not None or (existing is not None and _roles_of(existing) == set(roles)):
            continue
        os_ca = CertAndKey.from_pem(access.os_ca_crt, access.os_ca_key)
        config = generate_talosconfig(
            "default", os_ca, endpoints=["talos.default"], roles=roles, now=dt.datetime.now(dt.UTC)
        )
        data = {"config": base64.b64encode(render_talosconfig(config).encode()).decode()}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "ownerReferences": [_ref(account)]},
            "type": "Opaque",
            "data": data,
        }
        if existing is None:
            cluster.verbs.create(secrets, ns, secret, manager="talos")
        else:
            updated = copy.deepcopy(existing)
            updated["data"] = data
            updated["metadata"].pop("resourceVersion", None)
            cluster.verbs.replace(secrets, ns, name, updated, manager="talos")
