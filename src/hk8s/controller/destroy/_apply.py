"""The delete handlers of ``hk8s destroy``: re-check, then delete; idempotent and careful.

Before each delete the resource is looked up again (by name, or id where the API has no
name filter) and its labels checked once more with ``ownership_problem``: a resource
relabelled since the plan was shown is refused, and one that is gone, or whose name now
belongs to a different resource, counts as deleted (NotFound on delete is success, so a
re-run after an interruption just finishes the job).

Hetzner's delete protection (``protection.delete``) is checked three times: ``Destroyer.run``
refuses a plan that holds a protected resource before anything changes; each handler looks at
the resource's ``protected`` again right before its delete (protection set after the plan was
made) and does not send it; and an API answer ``protected`` (a race with the console) counts
the same. The first one stops the run: no delete starts after it, and nothing that depends
on the protected resource is deleted (the network outlives a protected server), so the run
can be finished later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hk8s.controller._ownership import ownership_problem
from hk8s.controller._report import NullReporter, ProgressEvent, Reporter
from hk8s.controller.destroy._plan import DESTROY_ORDER
from hk8s.errors import ConflictError, Hk8sError, NotFoundError, ProtectionError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hk8s.controller._executor import Handler, Results
    from hk8s.controller._plan import Operation
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["DELETED", "GONE", "DestroyHalt", "DestroyHandlers"]

DELETED = "deleted"
GONE = "already gone"

# What the API answers when removing a firewall from a selector it no longer has: the goal
# of the step is reached (API reference, POST /firewalls/{id}/actions/remove_from_resources).
_NOT_APPLIED = "firewall_resource_not_found"


@dataclass
class DestroyHalt:
    """Shared by the handlers of one run: set by the first protected resource."""

    protected: list[str] = field(default_factory=list)

    @property
    def halted(self) -> bool:
        return bool(self.protected)


class DestroyHandlers:
    """One handler for every kind ``destroy`` deletes (all share ``delete``)."""

    def __init__(
        self,
        hcloud: HcloudPort,
        cluster: str,
        reporter: Reporter | None = None,
        halt: DestroyHalt | None = None,
    ) -> None:
        self._hcloud = hcloud
        self._cluster = cluster
        self._reporter = reporter or NullReporter()
        self.halt = halt or DestroyHalt()

    def handlers(self) -> dict[str, Handler]:
        return dict.fromkeys(DESTROY_ORDER, self.delete)

    async def delete(self, op: Operation, results: Results) -> object:
        if self.halt.halted:
            raise ProtectionError(
                f"not deleting {op.kind} {op.name}: stopped because "
                f"{', '.join(self.halt.protected)} is protected against deletion"
            )
        current = await self._current(op)
        if current is None:
            self._reporter.emit(ProgressEvent("info", op.key, f"{op.kind} {op.name} {GONE}"))
            return GONE
        labels: dict[str, str] = dict(getattr(current, "labels", {}))
        problem = ownership_problem(
            op.params["owner"], labels, self._cluster, service_uid=op.params.get("service_uid")
        )
        if problem is not None:
            raise ConflictError(
                f"refusing to delete {op.kind} {op.name}: {problem}",
                hint="it was relabelled after the plan was made; check who owns it, then "
                "re-run hk8s destroy",
                labels=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            )
        resource_id: int = current.id
        if getattr(current, "protected", False):
            raise self._protected(op)
        try:
            if op.kind == "firewall":
                await self._detach_firewall(resource_id, tuple(current.applied_selectors))
            await self._deleter(op.kind)(resource_id)
        except NotFoundError:
            return GONE
        except ConflictError as exc:
            if exc.context.get("code") != "protected":
                raise
            raise self._protected(op) from exc
        return DELETED

    def _protected(self, op: Operation) -> ProtectionError:
        self.halt.protected.append(f"{op.kind} {op.name}")
        return ProtectionError(
            f"{op.kind} {op.name} is protected against deletion in Hetzner Cloud",
            hint="lift its delete protection (set protection: false and run hk8s create, "
            "or in the Hetzner console), then re-run hk8s destroy",
        )

    async def _detach_firewall(self, firewall_id: int, selectors: tuple[str, ...]) -> None:
        # A firewall still applied to resources cannot be deleted (resource_in_use).
        if not selectors:
            return
        try:
            await self._hcloud.remove_firewall_from_selectors(firewall_id, selectors)
        except Hk8sError as exc:
            if exc.context.get("code") != _NOT_APPLIED:
                raise

    async def _current(self, op: Operation) -> Any:
        """The resource as it is now, or None when the planned one no longer exists."""
        planned: Any = op.current
        h = self._hcloud
        find: dict[str, Callable[..., Awaitable[list[Any]]]] = {
            "server": h.list_servers,
            "load-balancer": h.list_load_balancers,
            "firewall": h.list_firewalls,
            "placement-group": h.list_placement_groups,
            "network": h.list_networks,
            "ssh-key": h.list_ssh_keys,
        }
        try:
            if op.kind == "image":
                return await h.get_image(planned.id)
            if op.kind == "volume":
                return await h.get_volume(planned.id)
            found = await find[op.kind](name=planned.name)
        except NotFoundError:
            return None
        same = [r for r in found if r.id == planned.id]
        if not same and found:
            self._reporter.emit(
                ProgressEvent(
                    "warning",
                    op.key,
                    f"a different {op.kind} named {planned.name} exists now; it is not touched",
                )
            )
        return same[0] if same else None

    def _deleter(self, kind: str) -> Callable[[int], Awaitable[None]]:
        h = self._hcloud
        deleters: dict[str, Callable[[int], Awaitable[None]]] = {
            "server": h.delete_server,
            "load-balancer": h.delete_load_balancer,
            "firewall": h.delete_firewall,
            "placement-group": h.delete_placement_group,
            "network": h.delete_network,
            "ssh-key": h.delete_ssh_key,
            "volume": h.delete_volume,
            "image": h.delete_image,
        }
        return deleters[kind]
