"""``hk8s create`` does not change versions: that is ``hk8s upgrade``'s job.

``create`` renders every machine config for the versions in cluster.yaml. Applied to nodes
that run another release, those configs would move the whole cluster at once, without a
drain or a health gate: a newer Talos release's config (its installer image, its config
contract) on nodes still running the older release, and a new Kubernetes version, which
Talos rolls out as soon as the config names it (kubelet and control-plane images). So before
anything changes (snapshots, servers, configs) ``create`` asks the configured nodes what
they run and refuses (``UsageError``, exit 2) if one differs from the config, pointing at
``hk8s upgrade``. A half-finished upgrade (some nodes at the new versions, some not) is
refused the same way: only ``hk8s upgrade`` finishes it safely.

Configured nodes are the servers carrying the config-hash label (``_nodes``); new servers
(a scale-up) have none and get the config's versions. Talos versions come from the
``Version`` RPC and Kubernetes versions from the Node objects and control-plane pods, as
``hk8s upgrade`` reads them (``_releases``). The Kubernetes API is asked once, without
retries: it is not up yet when a first ``create`` was interrupted before etcd was
bootstrapped, and that run must still be finished; the Talos check covers it then.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.controller._nodes import observe_endpoint, pair_nodes
from hk8s.controller._releases import (
    UPGRADING_ANNOTATION,
    parse_version,
    running_releases,
    static_pod_versions,
    talos_tag,
)
from hk8s.controller._servers import CONFIG_HASH_LABEL, desired_servers
from hk8s.errors import Hk8sError, UsageError, WaitTimeoutError
from hk8s.pki import generate_admin_kubeconfig

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.model.resources import Server
    from hk8s.pki import SecretsBundle
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["refuse_version_skew"]


async def refuse_version_skew(
    config: ClusterConfig,
    bundle: SecretsBundle,
    servers: Sequence[Server],
    *,
    hcloud: HcloudPort,
    probe: TalosNodeAPI,
    kube: Callable[[Mapping[str, Any]], KubernetesAPI],
    waiter: Waiter,
) -> None:
    """Raise ``UsageError`` if a configured node runs other versions than ``config``."""
    desired = desired_servers(config, cluster_id=bundle.cluster_id)
    nodes = [n for n in pair_nodes(desired, servers) if CONFIG_HASH_LABEL in n.server.labels]
    if not nodes:
        return
    tags = await _releases(probe, waiter, nodes)
    kubernetes, marked = await _kubernetes_versions(config, bundle, nodes, hcloud, kube, waiter)
    talos_want = parse_version(config.talos.version)
    kube_want = parse_version(config.kubernetes.version)
    runs: dict[str, str] = {}
    at_target: list[str] = []
    for node, tag in zip(nodes, tags, strict=True):
        seen = kubernetes.get(node.name, ())
        kube_off = sorted({v for v in seen if parse_version(v) != kube_want})
        facts = []
        if (tag is not None and parse_version(tag) != talos_want) or kube_off:
            facts.append(
                "runs "
                + ", ".join(
                    ([f"Talos {tag}"] if tag else []) + [f"Kubernetes {v}" for v in kube_off]
                )
            )
        if node.name in marked:
            facts.append(f"was left cordoned by an interrupted upgrade to {marked[node.name]}")
        if facts:
            runs[node.name] = " and ".join(facts)
        elif tag is not None:
            at_target.append(node.name)
    if runs:
        raise _skew_error(config, runs, at_target, interrupted=bool(marked))


async def _releases(probe: TalosNodeAPI, waiter: Waiter, nodes: Sequence[Node]) -> list[str | None]:
    """Each node's Talos version, ``None`` for a node that did not answer within the boot
    timeout: it is left to the later phases, which wait for it again (a run killed right
    after a node took its config finds it rebooting; before this check existed, nothing
    waited on it until the health gate)."""

    async def one(node: Node) -> str | None:
        try:
            [tag] = await running_releases(probe, waiter, [node])
        except WaitTimeoutError as exc:
            waiter.info(f"node/{node.name}", f"Talos version of {node.name} not checked",
                        exc.message)  # fmt: skip
            return None
        return tag

    return list(await asyncio.gather(*(one(n) for n in nodes)))


async def _kubernetes_versions(
    config: ClusterConfig,
    bundle: SecretsBundle,
    nodes: Sequence[Node],
    hcloud: HcloudPort,
    kube: Callable[[Mapping[str, Any]], KubernetesAPI],
    waiter: Waiter,
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Node name -> the Kubernetes versions it runs (kubelet; control planes also their
    static pods), and the nodes an interrupted ``hk8s upgrade`` left cordoned (with the
    release it was moving them to); empty when the API does not answer at once."""
    try:
        endpoint = await observe_endpoint(hcloud, config, nodes)
    except Hk8sError:
        return {}, {}  # no endpoint yet (e.g. no control plane): the plan reports it later
    text = generate_admin_kubeconfig(config.name, bundle.k8s_ca, endpoint.url)
    client = kube(yaml.safe_load(text))
    try:
        kube_nodes = await client.list_nodes(retry=False)
        pods = await client.list("v1", "Pod", namespace="kube-system")
    except Hk8sError as exc:
        waiter.info("versions", "Kubernetes versions not checked", exc.message)
        return {}, {}
    finally:
        await client.close()
    wanted = {n.name for n in nodes}
    kubelets = {n.name: n.kubelet_version for n in kube_nodes if n.kubelet_version}
    # A node hk8s upgrade cordoned and did not finish would stay cordoned: create's health
    # gate would wait for it in vain; only `hk8s upgrade` knows to uncordon it.
    marked = {
        n.name: n.annotations[UPGRADING_ANNOTATION]
        for n in kube_nodes
        if n.name in wanted and UPGRADING_ANNOTATION in n.annotations
    }
    found: dict[str, tuple[str, ...]] = {}
    for node in nodes:
        versions = [kubelets[node.name]] if node.name in kubelets else []
        if node.desired.control_plane:
            versions += [v for v in static_pod_versions(pods, node.name).values() if v]
        found[node.name] = tuple(v.removeprefix("v") for v in versions)
    return found, marked


def _skew_error(
    config: ClusterConfig, runs: Mapping[str, str], done: Sequence[str], *, interrupted: bool
) -> UsageError:
    want = f"Talos {talos_tag(config.talos.version)} and Kubernetes {config.kubernetes.version}"
    listed = "; ".join(f"{name} {facts}" for name, facts in runs.items())
    if done or interrupted:
        already = f"{', '.join(done)} already run(s) {want} as the config asks; " if done else ""
        return UsageError(
            f"a version upgrade of {config.name} is half-finished: {already}{listed}. "
            "`hk8s create` does not change versions, it would apply the new machine configs "
            "to every node at once",
            hint="finish the upgrade with `hk8s upgrade -f <config>` (nodes already upgraded "
            "are skipped), then run `hk8s create` again",
        )
    return UsageError(
        f"the config asks for {want}, but {listed}. `hk8s create` does not change versions: "
        "it would apply the new machine configs to every node at once, without draining",
        hint="run `hk8s upgrade -f <config>` (rolls one node at a time; `--dry-run` shows "
        "the plan), or set the versions in the config back",
    )
