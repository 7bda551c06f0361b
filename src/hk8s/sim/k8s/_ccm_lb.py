"""Hetzner load balancers for Services of type LoadBalancer, as hcloud-cloud-controller-manager.

The real CCM runs cloud-provider's service controller (``k8s.io/cloud-provider``
``controllers/service/controller.go``) with Hetzner's ``EnsureLoadBalancer`` behind it
(hcloud-cloud-controller-manager ``hcloud/load_balancers.go``, ``internal/hcops/
load_balancer.go``, annotations in ``internal/annotation/load_balancer.go``). This does what
they do, as an API client of the real kube-apiserver and of the (simulated) Hetzner API:

- a Service that wants a load balancer (type LoadBalancer, no ``loadBalancerClass``) first
  gets the finalizer ``service.kubernetes.io/load-balancer-cleanup``; then its load balancer
  is found by the label ``hcloud-ccm/service-uid=<uid>``, else by name, else created: named
  by ``load-balancer.hetzner.cloud/name`` or ``"a" + uid`` without dashes (at most 32
  characters, cloud-provider's ``DefaultLoadBalancerName``), type from ``.../type``
  (default ``lb11``), in ``.../location`` or ``.../network-zone`` (without either, and no
  default given, the sync fails as upstream's does: "neither ... nor ... set"), algorithm
  from ``.../algorithm-type``, public interface off with ``.../disable-public-network``;
- it is attached to the cluster's network (``network`` in Secret kube-system/hcloud, as the
  chart wires ``HCLOUD_NETWORK``), at ``.../private-ipv4`` if given;
- one Hetzner service per TCP port: listen port = the Service port, destination = its
  nodePort, health check TCP on the nodePort (``.../protocol``, ``.../uses-proxyprotocol``
  honoured); ports gone from the Service are removed;
- targets: the servers (``spec.providerID`` ``hcloud://<id>``) of every node not being
  deleted, not labelled ``node.kubernetes.io/exclude-from-external-load-balancers``, not
  tainted ``ToBeDeletedByClusterAutoscaler``, filtered by ``.../node-selector``;
- ``status.loadBalancer.ingress``: the public IPv4 and IPv6 (unless ``.../ipv6-disabled``)
  and the private IPs (unless ``.../disable-private-ingress``), ``ipMode`` VIP (Proxy with
  the proxy protocol), or only ``.../hostname`` when set;
- a Service deleted, or no longer of type LoadBalancer, has its load balancer deleted (not
  when it is delete-protected, as upstream), then loses the finalizer;
- Events as the service controller records them (EnsuringLoadBalancer, EnsuredLoadBalancer,
  SyncLoadBalancerFailed, DeletingLoadBalancer, DeletedLoadBalancer).

Deviations (docs/simulator.md): HTTP/HTTPS services (certificates, cookies, redirects),
health-check tuning annotations, reverse DNS, robot servers, changing the type or algorithm
of an existing load balancer, detaching from a network and ``use-private-ip`` targets are
not simulated; the cluster-wide ``HCLOUD_LOAD_BALANCERS_*`` settings are constructor
arguments (``location``, ``network_zone``, ``lb_type``) instead of environment variables.

>>> ccm = LoadBalancerController(plane.client(), sim.endpoint)
>>> task = asyncio.create_task(ccm.run()); ...; await ccm.stop()
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerAlgorithm,
    LoadBalancerHealthCheck,
    LoadBalancerService,
    LoadBalancerTarget,
)
from hcloud.locations import Location

from hk8s.model.labels import parse_selector
from hk8s.sim.k8s._client import ApiError
from hk8s.sim.k8s._cloud import CloudCredentials, HcloudAccess, blocking
from hk8s.sim.k8s._informer import Controller, record_event

if TYPE_CHECKING:
    from hcloud import Client
    from hcloud.load_balancers import BoundLoadBalancer

    from hk8s.model.clock import Clock
    from hk8s.sim.k8s._client import KubeClient

__all__ = ["FINALIZER", "LABEL_SERVICE_UID", "LoadBalancerController", "default_name"]

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
LABEL_SERVICE_UID = "hcloud-ccm/service-uid"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
PROVIDER_PREFIX = "hcloud://"
_A = "load-balancer.hetzner.cloud/"
_COMPONENT = "service-controller"


def default_name(uid: str) -> str:
    """cloud-provider's ``DefaultLoadBalancerName``.

    >>> default_name("0f6a3c5e-1d2b-4c3d-9e8f-0a1b2c3d4e5f")
    'a0f6a3c5e1d2b4c3d9e8f0a1b2c3d4e5'
    """
    return ("a" + uid).replace("-", "")[:32]


def _flag(annotations: dict[str, str], name: str, default: bool) -> bool:
    value = annotations.get(_A + name)
    return default if value is None else value.strip().lower() == "true"


def _wants(svc: dict[str, Any]) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class LoadBalancerController(Controller):
    name = "hcloud-ccm service controller"

    def __init__(
        self,
        api: KubeClient,
        hcloud_endpoint: str,
        *,
        clock: Clock | None = None,
        location: str | None = None,
        network_zone: str | None = None,
        lb_type: str | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        super().__init__(api, clock=clock)
        self.cloud = HcloudAccess(
            api,
            hcloud_endpoint,
            agent="hcloud-cloud-controller-manager",
            poll_interval=poll_interval,
        )
        self.location, self.network_zone, self.lb_type = location, network_zone, lb_type
        self.services = self.informer("/api/v1/services")
        self.nodes = self.informer("/api/v1/nodes", self._nodes_changed)
        self._done: dict[str, str] = {}  # key -> fingerprint of the last successful sync

    # --- what triggers a sync ------------------------------------------------------------

    def _server_ids(self, svc: dict[str, Any]) -> tuple[int, ...]:
        annotations = (svc.get("metadata") or {}).get("annotations") or {}
        selector = annotations.get(_A + "node-selector", "")
        ids = set()
        for node in self.nodes.items.values():
            meta, spec = node.get("metadata") or {}, node.get("spec") or {}
            labels = meta.get("labels") or {}
            excluded = labels.get(EXCLUDE_LABEL, "false").lower() != "false"
            if meta.get("deletionTimestamp") or excluded:
                continue
            if any(t.get("key") == TO_BE_DELETED_TAINT for t in spec.get("taints") or []):
                continue
            if selector and not parse_selector(selector).matches(labels):
                continue
            provider = str(spec.get("providerID", ""))
            if provider.startswith(PROVIDER_PREFIX) and provider[9:].isdigit():
                ids.add(int(provider[len(PROVIDER_PREFIX) :]))
        return tuple(sorted(ids))

    def _nodes_changed(self, _key: str) -> None:
        # Node heartbeats change nodes all the time; like the service controller's node
        # sync, only a change of a Service's eligible nodes re-syncs its load balancer.
        for key, svc in self.services.items.items():
            finalizers = (svc.get("metadata") or {}).get("finalizers") or []
            wanted = _wants(svc) or FINALIZER in finalizers
            if wanted and key in self._done and self._done[key] != self._fingerprint(svc):
                self.enqueue(key)

    def _fingerprint(self, svc: dict[str, Any]) -> str:
        # What a sync depends on; not its own writes (finalizer, status), like the service
        # controller's needsUpdate, so its writes do not sync the Service again.
        meta = svc.get("metadata") or {}
        return json.dumps(
            [
                meta.get("uid"),
                meta.get("annotations"),
                meta.get("deletionTimestamp"),
                svc.get("spec"),
                self._server_ids(svc),
            ],
            sort_keys=True,
        )

    # --- the sync ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        svc = self.services.items.get(key)
        if svc is None:
            self._done.pop(key, None)
            return
        fingerprint = self._fingerprint(svc)
        if self._done.get(key) == fingerprint:
            return
        meta = svc.get("metadata") or {}
        has_finalizer = FINALIZER in (meta.get("finalizers") or [])
        cleanup = has_finalizer and (
            meta.get("deletionTimestamp") or (svc.get("spec") or {}).get("type") != "LoadBalancer"
        )
        try:
            if not _wants(svc) or cleanup:
                if has_finalizer:
                    await self._delete(svc)
            else:
                await self._ensure(svc)
        except ApiError as exc:
            if exc.code == 404:  # the Service went while we worked
                return
            raise
        self._done[key] = fingerprint

    async def _event(self, svc: dict[str, Any], kind: str, reason: str, message: str) -> None:
        await record_event(self.api, svc, "Service", kind, reason, message, _COMPONENT)

    def _path(self, svc: dict[str, Any]) -> str:
        meta = svc["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}"

    async def _set_finalizers(self, svc: dict[str, Any], finalizers: list[str]) -> None:
        meta = svc["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        updated = await self.api.patch(self._path(svc), patch)  # 409 on a stale copy: retried
        self.services.items[f"{meta['namespace']}/{meta['name']}"] = updated

    async def _set_status(self, svc: dict[str, Any], ingress: list[dict[str, Any]]) -> None:
        current = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if current != ingress:
            body = {"status": {"loadBalancer": {"ingress": ingress or None}}}
            await self.api.patch(self._path(svc) + "/status", body)

    async def _ensure(self, svc: dict[str, Any]) -> None:
        await self._event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        finalizers = list((svc["metadata"].get("finalizers")) or [])
        if FINALIZER not in finalizers:
            await self._set_finalizers(svc, [*finalizers, FINALIZER])
            svc = self.services.items.get(
                f"{svc['metadata']['namespace']}/{svc['metadata']['name']}", svc
            )
        servers = self._server_ids(svc)
        if not servers:
            await self._event(
                svc,
                "Warning",
                "UnAvailableLoadBalancer",
                "There are no available nodes for LoadBalancer",
            )
        try:
            client, creds = await self.cloud.client()
            ingress = await blocking(lambda: self._ensure_hetzner(client, creds, svc, servers))
        except Exception as exc:
            await self._event(
                svc,
                "Warning",
                "SyncLoadBalancerFailed",
                f"Error syncing load balancer: failed to ensure load balancer: {exc}",
            )
            raise
        await self._set_status(svc, ingress)
        await self._event(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")

    async def _delete(self, svc: dict[str, Any]) -> None:
        client, _ = await self.cloud.client()
        uid = svc["metadata"]["uid"]
        found = await blocking(lambda: _by_uid(client, uid))
        if found is not None:
            await self._event(svc, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
            if not (
                found.protection and found.protection["delete"]
            ):  # upstream keeps protected ones
                await blocking(lambda: client.load_balancers.delete(found))
        finalizers = [f for f in svc["metadata"].get("finalizers") or [] if f != FINALIZER]
        await self._set_finalizers(svc, finalizers)
        await self._event(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")
        if not svc["metadata"].get("deletionTimestamp"):
            await self._set_status(svc, [])

    # --- the Hetzner side (blocking, in a worker thread) ----------------------------------

    def _ensure_hetzner(
        self, client: Client, creds: CloudCredentials, svc: dict[str, Any], servers: tuple[int, ...]
    ) -> list[dict[str, Any]]:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        annotations: dict[str, str] = meta.get("annotations") or {}
        name = annotations.get(_A + "name") or default_name(meta["uid"])
        lb = _by_uid(client, meta["uid"]) or client.load_balancers.get_by_name(name)
        if lb is None:
            lb = self._create(client, name, svc)
        if (lb.labels or {}).get(LABEL_SERVICE_UID) != meta["uid"] or lb.name != name:
            labels = {**(lb.labels or {}), LABEL_SERVICE_UID: meta["uid"]}
            lb = client.load_balancers.update(lb, name=name, labels=labels)
        if creds.network:
            network = (
                client.networks.get_by_id(int(creds.network))
                if creds.network.isdigit()
                else client.networks.get_by_name(creds.network)
            )
            if network is None:
                raise RuntimeError(f"network {creds.network} not found")
            if not any(p.network.id == network.id for p in lb.private_net or []):
                ip = annotations.get(_A + "private-ipv4")
                client.load_balancers.attach_to_network(lb, network, ip=ip).wait_until_finished()
        _reconcile_services(client, lb, spec.get("ports") or [], annotations)
        _reconcile_targets(client, lb, servers)
        lb = client.load_balancers.get_by_id(_id(lb.id))
        if hostname := annotations.get(_A + "hostname"):
            return [{"hostname": hostname}]
        mode = "Proxy" if _flag(annotations, "uses-proxyprotocol", False) else "VIP"
        ingress = []
        if lb.public_net is not None and lb.public_net.enabled:
            ingress.append({"ip": lb.public_net.ipv4.ip, "ipMode": mode})
            if not _flag(annotations, "ipv6-disabled", False) and lb.public_net.ipv6:
                ingress.append({"ip": lb.public_net.ipv6.ip, "ipMode": mode})
        if not _flag(annotations, "disable-private-ingress", False):
            ingress += [{"ip": p.ip, "ipMode": mode} for p in lb.private_net or []]
        return ingress

    def _create(self, client: Client, name: str, svc: dict[str, Any]) -> BoundLoadBalancer:
        meta = svc["metadata"]
        annotations: dict[str, str] = meta.get("annotations") or {}
        location = annotations.get(_A + "location", self.location or "")
        zone = annotations.get(_A + "network-zone", self.network_zone or "")
        if not location and not zone:
            raise RuntimeError(
                f"hcops/LoadBalancerOps.Create: neither {_A}location nor {_A}network-zone set"
            )
        algorithm = annotations.get(_A + "algorithm-type")
        public = annotations.get(_A + "disable-public-network")
        created = client.load_balancers.create(
            name=name,
            load_balancer_type=LoadBalancerType(
                name=annotations.get(_A + "type") or self.lb_type or "lb11"
            ),
            labels={LABEL_SERVICE_UID: meta["uid"]},
            location=Location(name=location) if location else None,
            network_zone=None if location else zone,
            algorithm=LoadBalancerAlgorithm(type=algorithm) if algorithm else None,
            public_interface=None if public is None else public.lower() != "true",
        )
        if created.action is not None:
            created.action.wait_until_finished()
        return client.load_balancers.get_by_id(_id(created.load_balancer.id))


def _id(value: int | None) -> int:
    if value is None:
        raise RuntimeError("the Hetzner API answered a resource without an id")
    return value


def _by_uid(client: Client, uid: str) -> BoundLoadBalancer | None:
    found = client.load_balancers.get_all(label_selector=f"{LABEL_SERVICE_UID}={uid}")
    if len(found) > 1:
        raise RuntimeError(f"more than one load balancer labelled {LABEL_SERVICE_UID}={uid}")
    return found[0] if found else None


def _reconcile_services(
    client: Client, lb: BoundLoadBalancer, ports: list[dict[str, Any]], annotations: dict[str, str]
) -> None:
    existing = {s.listen_port: s for s in lb.services or []}
    protocol = annotations.get(_A + "protocol", "tcp")
    proxy = _flag(annotations, "uses-proxyprotocol", False)
    for port in ports:
        if port.get("protocol", "TCP") != "TCP" or not port.get("nodePort"):
            continue  # upstream: "UnsupportedProtocolConfigured"; no nodePort yet: next sync
        listen, node_port = int(port["port"]), int(port["nodePort"])
        wanted = LoadBalancerService(
            protocol=protocol,
            listen_port=listen,
            destination_port=node_port,
            proxyprotocol=proxy,
            health_check=LoadBalancerHealthCheck(
                protocol="tcp", port=node_port, interval=15, timeout=10, retries=3
            ),
        )
        have = existing.pop(listen, None)
        if have is None:
            client.load_balancers.add_service(lb, wanted).wait_until_finished()
        elif have.destination_port != node_port or have.proxyprotocol != proxy:
            client.load_balancers.update_service(lb, wanted).wait_until_finished()
    for stale in existing.values():
        client.load_balancers.delete_service(lb, stale).wait_until_finished()


def _reconcile_targets(client: Client, lb: BoundLoadBalancer, servers: tuple[int, ...]) -> None:
    have = {t.server.id: t for t in lb.targets or [] if t.type == "server" and t.server}
    for server_id, target in have.items():
        if server_id not in servers:
            client.load_balancers.remove_target(lb, target).wait_until_finished()
    for server_id in servers:
        if server_id not in have:
            server = client.servers.get_by_id(server_id)
            target = LoadBalancerTarget(type="server", server=server, use_private_ip=False)
            client.load_balancers.add_target(lb, target).wait_until_finished()
