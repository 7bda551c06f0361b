"""One node's upgrade: Talos (drain, Upgrade, back at the new release) or Kubernetes (config).

Talos, per node (after talos' ``talosctl upgrade`` and the "Upgrading Talos Linux" guide):

1. cordon and drain through the Kubernetes API, honouring PodDisruptionBudgets;
2. control planes: etcd is ready to lose this member for a while (every member started and
   healthy, not exactly two), as Talos' own pre-upgrade check wants
   (``internal/pkg/etcd/etcd.go`` ValidateForUpgrade);
   then ``Upgrade`` with the Image Factory's hcloud installer of the cluster's schematic and
   the target version, without ``preserve``: since 1.8 Talos keeps EPHEMERAL on upgrade
   whatever it says ("system disk wipe on upgrade is not supported anymore"), and on
   1.12.9+/1.13.4+ ``preserve`` switches off that etcd upgrade lock and health check
   (v1alpha1_server.go Upgrade: ``... && !in.GetForce() && !in.GetPreserve()``). Talos pulls
   and test-runs the installer inside the call (minutes, when the factory builds it first):
   a call that times out or loses its node is asked after, not blindly repeated;
3. wait until the node answers at the target version. A node that went down and answers
   again at the old version booted back into it (Talos' A/B rollback when the new release
   fails to boot): that is a failure, reported as soon as the node serves its old release
   again (so the run leaves it as it found it), instead of waiting out the timeout;
4. control planes: etcd has every control plane as a member again;
5. the machine config rendered for the new release (installer image, contract) applied in
   AUTO mode (``.machine.install`` changes apply without a reboot; a contract change Talos
   applies only at boot reboots the node, which is then waited for) and the config-hash label
   updated, so a later ``hk8s create`` finds nothing to change;
6. the Node Ready, then uncordoned.

Kubernetes, per node (like ``talosctl upgrade-k8s``, which patches the machine config of each
node in turn): the config rendered with the new version applied with ``NO_REBOOT``, then wait
until the kubelet reports the version and, on control planes, the static pods run its images.
Unlike upgrade-k8s, which moves kube-apiserver on every control plane before any kubelet, a
control plane's components and kubelet move together here (one rendered config per node), so
for the minutes the control planes take, a new kubelet may talk to an older API server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hk8s.controller._etcd_members import wait_etcd_members
from hk8s.controller._health import check_health
from hk8s.controller._node_reboots import boot_id, wait_back_after_reboot
from hk8s.controller._nodes import config_hash
from hk8s.controller._releases import (
    UPGRADING_ANNOTATION,
    parse_version,
    static_pod_versions,
    talos_tag,
)
from hk8s.controller._servers import CONFIG_HASH_LABEL
from hk8s.errors import Hk8sError, PermanentError, UnavailableError
from hk8s.machineconfig import INSTALLER_PLATFORM
from hk8s.providers.talos import ApplyMode

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hk8s.controller._health import HealthCheck
    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["NodeUpgrader", "cordon_object"]

_FIELD_MANAGER = "hk8s-upgrade"

# What the gate between nodes ignores: a node hk8s itself cordoned is checked by its own step,
# and a node the operator cordoned on purpose must not stall a rolling upgrade.
_GATE_IGNORES = frozenset({"nodes schedulable"})


def cordon_object(node: str, target: str) -> dict[str, Any]:
    """Server-side apply body: cordon the Node and mark it as being upgraded to ``target``."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "annotations": {UPGRADING_ANNOTATION: target}},
            "spec": {"unschedulable": True}}  # fmt: skip


def _check_platform(node: Node, platform: str) -> None:
    """A node upgraded with another platform's installer boots as that platform (Talos bakes
    ``talos.platform=`` into the installer's boot assets): say so instead of going on."""
    if platform and platform != INSTALLER_PLATFORM:
        raise PermanentError(
            f"it booted the new release as platform {platform!r}, not {INSTALLER_PLATFORM!r}: "
            "the installer image was not the Image Factory's hcloud installer",
            hint="upgrade again with the `hcloud-installer` image of the cluster's schematic "
            "(`hk8s upgrade` uses it)",
            node=node.name,
        )


@dataclass
class NodeUpgrader:
    """The ports and facts each node step needs; ``labels`` tracks config-hash labels set."""

    hcloud: HcloudPort
    talos: TalosNodeAPI
    probe: TalosNodeAPI
    kube: KubernetesAPI
    waiter: Waiter
    nodes: Sequence[Node]
    render: Callable[[Node, str, str], bytes]  # (node, talos, kubernetes) -> machine config
    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.desired.control_plane]

    def label_hash(self, node: Node) -> str | None:
        return self.labels.get(node.name, node.server.labels).get(CONFIG_HASH_LABEL)

    async def apply_config(self, node: Node, data: bytes, mode: ApplyMode) -> str:
        """Apply over mTLS and record the config-hash label; returns the mode Talos used."""
        result = await self.talos.apply_config(node.address, data, mode)
        labels = {**self.labels.get(node.name, node.server.labels),
                  CONFIG_HASH_LABEL: config_hash(data)}  # fmt: skip
        await self.hcloud.set_labels("server", node.server.id, labels)
        self.labels[node.name] = labels
        return result.mode.value

    # -- gates ------------------------------------------------------------------------------
    async def gate(self) -> list[HealthCheck]:
        """Wait until the cluster is healthy (schedulability aside) before the next node."""
        final: list[HealthCheck] = []

        async def check() -> tuple[bool, str]:
            nonlocal final
            final = await check_health(self.probe, self.kube, self.nodes)
            failing = [f"{c.name}: {c.detail}" for c in final
                       if not c.ok and c.name not in _GATE_IGNORES]  # fmt: skip
            return not failing, "; ".join(failing)

        await self.waiter.until("health", "cluster health checks", check)
        return final

    async def ready_and_uncordoned(self, node: Node, boot: str | None = None) -> None:
        """Ready (``boot``: the bootID before its reboot; Ready then means the kubelet of a
        later boot says so), then uncordoned."""
        key = f"node/{node.name}"
        self.waiter.step(key, f"{node.name} Ready")
        await self.kube.wait_nodes_ready([node.name], booted_since={node.name: boot})
        await self.kube.uncordon(node.name, annotation=UPGRADING_ANNOTATION)
        self.waiter.done(key, f"{node.name} Ready", "uncordoned")

    # -- Talos ------------------------------------------------------------------------------
    async def upgrade_talos(self, node: Node, image: str, target: str, kubernetes: str) -> None:
        key = f"node/{node.name}"
        running = (await self.talos.version(node.address)).tag
        boot = None
        if parse_version(running) != parse_version(target):
            self.waiter.step(key, f"drain {node.name}")
            try:
                await self.kube.apply(
                    [cordon_object(node.name, target)], field_manager=_FIELD_MANAGER
                )
                evicted = await self.kube.drain(node.name)
                self.waiter.done(key, f"drain {node.name}", f"{len(evicted)} pod(s) evicted")
                self.waiter.step(key, f"upgrade {node.name} to Talos {target}")
                if node.desired.control_plane:
                    await self._etcd_ready(node)
                boot = await self._boot_id(node)
                await self._start_upgrade(node, image, target, boot)
                await self._wait_release(node, target, boot)
            except Hk8sError:
                # Leave the node as useful as before (its old release, schedulable); a drain
                # blocked by a PodDisruptionBudget names the budget in the error.
                await self._uncordon_quietly(node)
                raise
            self.waiter.done(key, f"upgrade {node.name} to Talos {target}")
        else:
            self.waiter.info(key, f"{node.name} runs Talos {running}: finishing its upgrade")
        if node.desired.control_plane:
            await wait_etcd_members(self.probe, self.waiter, self.control_planes)
        data = self.render(node, target, kubernetes)
        if self.label_hash(node) != config_hash(data):
            self.waiter.step(key, f"machine config for Talos {target} on {node.name}")
            mode = await self.apply_config(node, data, ApplyMode.AUTO)
            self.waiter.done(key, f"machine config for Talos {target} on {node.name}", mode)
            if mode == ApplyMode.REBOOT.value:
                # The new release's config changed something Talos only applies at boot
                # (CanApplyImmediate): this node reboots once more, alone.
                await wait_back_after_reboot(self.probe, self.waiter, node)
        await self.ready_and_uncordoned(node, boot)

    async def _uncordon_quietly(self, node: Node) -> None:
        try:
            await self.kube.uncordon(node.name, annotation=UPGRADING_ANNOTATION)
        except Hk8sError as exc:
            self.waiter.info(f"node/{node.name}", f"could not uncordon {node.name}", exc.message)

    async def _etcd_ready(self, node: Node) -> None:
        """Until etcd can lose ``node``'s member for the upgrade: Talos' ValidateForUpgrade
        rules (every member started and healthy; two members would lose quorum), checked
        here too so that a refusal is explained and waited out, whatever the release."""

        async def check() -> tuple[bool, str]:
            members = await self.probe.etcd_members(node.address)
            if len(members) == 2:
                raise PermanentError(
                    "etcd has 2 members: upgrading one would lose quorum",
                    hint="scale the control plane to an odd count first (1, 3 or 5)",
                    node=node.name,
                )
            waiting = [m.hostname or f"{m.id:016x}" for m in members
                       if m.is_learner or not m.hostname or not m.client_urls]  # fmt: skip
            if waiting:
                return False, "etcd members not started yet: " + ", ".join(waiting)
            for other in self.control_planes:
                services = {s.id: s for s in await self.probe.services(other.address)}
                etcd = services.get("etcd")
                if etcd is None or not etcd.healthy:
                    return False, f"etcd on {other.name} is not healthy"
            return True, ""

        await self.waiter.until(
            f"node/{node.name}", f"etcd healthy before upgrading {node.name}", check
        )

    async def _start_upgrade(self, node: Node, image: str, target: str, boot: str | None) -> None:
        """Call Upgrade until Talos accepts it. After a call that timed out or lost its
        node, the node is asked first: at the target release, or booted since, means the
        upgrade ran (the reply was lost) and is not started again."""
        want = parse_version(target)
        tried = False

        async def start() -> tuple[bool, str]:
            nonlocal tried
            if tried:
                info = await self.probe.version(node.address)
                if parse_version(info.tag) == want or await self._rebooted(node, boot):
                    return True, ""
            tried = True
            await self.talos.upgrade(node.address, image)
            return True, ""

        await self.waiter.until(
            f"node/{node.name}", f"Talos on {node.name} to accept the upgrade", start
        )

    async def _boot_id(self, node: Node) -> str | None:
        """The node's bootID, None when the API cannot tell (the reboot is then told by
        Talos going quiet)."""
        try:
            return await boot_id(self.kube, node.name)
        except Hk8sError:
            return None

    async def _rebooted(self, node: Node, boot: str | None) -> bool:
        if boot is None:
            return False
        now = await self._boot_id(node)
        return now is not None and now != boot

    async def _wait_release(self, node: Node, target: str, boot: str | None = None) -> None:
        """Until the node answers at ``target``. Back at its old release after a reboot
        means the upgrade was rolled back. The reboot is told by the Node's new ``bootID``;
        only without one (no kubelet registered before) by a failed poll, which a timeout
        during the install could fake."""
        went_down = False
        want = parse_version(target)

        async def back() -> tuple[bool, str]:
            nonlocal went_down
            try:
                info = await self.probe.version(node.address)
            except Hk8sError as exc:
                if not exc.retryable:
                    raise
                went_down = True
                raise UnavailableError(f"{node.name} is rebooting ({exc.message})") from exc
            tag = info.tag
            if parse_version(tag) == want:
                _check_platform(node, info.platform)
                return True, ""
            rebooted = went_down if boot is None else await self._rebooted(node, boot)
            if rebooted:
                serving = await self._back_in_service(node, boot)
                raise PermanentError(
                    f"it rebooted into Talos {tag} instead of {talos_tag(target)}: "
                    f"the new release did not boot and Talos rolled back; {serving}",
                    hint="see why with `talosctl -n <ip> dmesg` (or the Hetzner console); "
                    "fix the cause and re-run `hk8s upgrade`, which skips nodes already done",
                    node=node.name,
                )
            return False, f"still running {tag}, installing {talos_tag(target)}"

        await self.waiter.until(
            f"node/{node.name}",
            f"{node.name} to boot Talos {talos_tag(target)}",
            back,
            timeout=self.waiter.timing.cluster_timeout,
        )

    async def _back_in_service(self, node: Node, boot: str | None) -> str:
        """After a rollback: wait (a boot's budget) until the node serves its old release
        again, so that the failed run leaves the cluster as healthy as it found it and a
        re-run's health check does not meet a node still coming up. Says how it ended."""
        try:
            await self.kube.wait_nodes_ready(
                [node.name],
                timeout=self.waiter.timing.boot_timeout,
                booted_since={node.name: boot},
            )
        except Hk8sError as exc:
            return f"it has not come back Ready ({exc.message})"
        return "it is back in service at its old release"

    # -- Kubernetes -------------------------------------------------------------------------
    async def kubernetes_done(self, node: Node, target: str) -> tuple[bool, str]:
        """Whether the kubelet (and the static pods) run ``target``, and what was seen."""
        want = parse_version(target)
        found = {n.name: n for n in await self.kube.list_nodes()}
        kube_node = found.get(node.name)
        seen = kube_node.kubelet_version if kube_node else None
        problems = []
        if kube_node is None or not seen or parse_version(seen) != want:
            problems.append(f"kubelet {seen or 'not registered'}")
        elif not kube_node.ready:
            problems.append("not Ready")
        if node.desired.control_plane:
            pods = await self.kube.list("v1", "Pod", namespace="kube-system")
            for component, version in static_pod_versions(pods, node.name).items():
                if version is None or parse_version(version) != want:
                    problems.append(f"{component} {version or 'missing'}")
        return not problems, ", ".join(problems)

    async def upgrade_kubernetes(self, node: Node, talos: str, target: str) -> bool:
        """Roll ``node`` to Kubernetes ``target``; False when it was already there."""
        key = f"node/{node.name}"
        data = self.render(node, talos, target)
        done, _ = await self.kubernetes_done(node, target)
        if done and self.label_hash(node) == config_hash(data):
            return False
        title = f"{node.name} to Kubernetes {target}"
        self.waiter.step(key, title)
        mode = await self.apply_config(node, data, ApplyMode.NO_REBOOT)
        self.waiter.info(key, f"machine config applied to {node.name}", mode)
        await self.waiter.until(
            key,
            f"kubelet{' and control plane pods' if node.desired.control_plane else ''} of "
            f"{node.name} at {target}",
            lambda: self.kubernetes_done(node, target),
        )
        self.waiter.done(key, title)
        return True
