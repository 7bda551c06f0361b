"""The REST endpoints every resource type has, written once.

Each resource type answers the same way for the same verbs (openapi.json, e.g. ``/networks``):
``GET /{collection}`` lists with ``name``/``label_selector``/``sort``/pagination, ``GET
/{collection}/{id}`` answers ``{key: ...}``, ``PUT`` changes ``name`` (unique per type, 409
``uniqueness_error``) and ``labels``, ``DELETE`` refuses a protected resource with
``protected``, and ``actions/change_protection`` starts a ``change_protection`` action. A
``Resource`` describes one type; the ``*_endpoint`` functions register these endpoints for it,
with the per-type rules (extra filters, name syntax, delete checks) passed in explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from hk8s.sim.hcloud._errors import ApiError, invalid_input
from hk8s.sim.hcloud._routing import Reply, check_name, labels_of, list_reply, lookup, optional
from hk8s.sim.hcloud._views import action_json

if TYPE_CHECKING:
    from hk8s.sim.hcloud._routing import Ctx, Router
    from hk8s.sim.hcloud._state import HcloudState

__all__ = [
    "Resource",
    "delete_endpoint",
    "get_endpoint",
    "list_endpoint",
    "protection_endpoint",
    "status_filter",
    "update_endpoint",
]


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


class _Named(Protocol):
    id: int
    name: str
    labels: dict[str, str]


class _WithStatus(Protocol):
    @property
    def status(self) -> str: ...


class _Protectable(Protocol):
    id: int
    protection_delete: bool


T = TypeVar("T", bound=_Identified)
N = TypeVar("N", bound=_Named)
P = TypeVar("P", bound=_Protectable)
S = TypeVar("S", bound=_WithStatus)
Check = Callable[["HcloudState", T], None]


@dataclass(frozen=True)
class Resource(Generic[T]):
    """One resource type: where it lives in the state, and its names on the wire."""

    collection: str  # URL segment and list key: "load_balancers"
    key: str  # one item in a response, and its type in an action's resources: "load_balancer"
    label: str  # in error messages: "load balancer"
    store: Callable[[HcloudState], dict[int, T]]
    view: Callable[[HcloudState, T], dict[str, Any]]

    def find(self, ctx: Ctx) -> T:
        """The resource named by the ``{id}`` of the path; 404 ``not_found`` otherwise."""
        return lookup(self.store(ctx.state), ctx.id(), self.label)

    def reply(self, ctx: Ctx, item: T, status: int = 200, **extra: Any) -> Reply:
        return Reply(status, {self.key: self.view(ctx.state, item), **extra})

    def start_action(
        self, ctx: Ctx, item: T, command: str, also: Iterable[tuple[int, str]] = ()
    ) -> Reply:
        """Start a short action on ``item`` (and ``also``): 201 ``{"action": ...}``."""
        state = ctx.state
        action = state.start_action(command, [(item.id, self.key), *also], state.durations.short)
        return Reply(201, {"action": action_json(state, action)})

    def unprotected(self, _state: HcloudState, item: Any) -> None:
        """A delete check: ``protected`` while the resource's delete protection is on."""
        if item.protection_delete:
            raise ApiError("protected", f"{self.label} is protected against deletion")


def list_endpoint(
    router: Router,
    res: Resource[T],
    filters: Callable[[Ctx, list[T]], list[T]] | None = None,
) -> None:
    """``GET /{collection}``; ``filters`` applies the type's own query parameters first."""

    async def list_all(ctx: Ctx) -> Reply:
        items = list(res.store(ctx.state).values())
        if filters is not None:
            items = filters(ctx, items)
        return list_reply(ctx, res.collection, items, lambda item: res.view(ctx.state, item))

    router.route("GET", f"/{res.collection}")(list_all)


def status_filter(allowed: set[str], what: str) -> Callable[[Ctx, list[S]], list[S]]:
    """The ``status`` query filter of a list (enum values checked, openapi.json)."""

    def select(ctx: Ctx, items: list[S]) -> list[S]:
        if statuses := ctx.queries("status"):
            if unknown := set(statuses) - allowed:
                raise invalid_input("status", f"invalid {what} {sorted(unknown)}")
            items = [item for item in items if item.status in statuses]
        return items

    return select


def get_endpoint(router: Router, res: Resource[T]) -> None:
    async def get_one(ctx: Ctx) -> Reply:
        return res.reply(ctx, res.find(ctx))

    router.route("GET", f"/{res.collection}/{{id}}")(get_one)


def _any_name(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_input("name", "has an invalid type")
    return value


def update_endpoint(
    router: Router,
    res: Resource[N],
    *,
    find: Callable[[Ctx], N] | None = None,
    valid_name: Callable[[Any], str] = _any_name,
    fields: Sequence[str] = ("name", "labels"),
) -> None:
    """``PUT /{collection}/{id}``: the ``fields`` in their order of checking and setting.

    ``name`` is checked by ``valid_name`` and for uniqueness, ``labels`` by the label rules;
    any other field is a boolean flag of the resource.
    """

    async def update(ctx: Ctx) -> Reply:
        item = find(ctx) if find is not None else res.find(ctx)
        body = ctx.body()
        for field in fields:
            if field == "labels":
                item.labels = labels_of(body, item.labels)
            elif field == "name":
                if (raw := body.get("name")) is not None:
                    name = valid_name(raw)
                    check_name(name, res.store(ctx.state).values(), exclude=item.id)
                    item.name = name
            else:
                setattr(item, field, optional(body, field, bool, getattr(item, field)))
        return res.reply(ctx, item)

    router.route("PUT", f"/{res.collection}/{{id}}")(update)


def delete_endpoint(
    router: Router,
    res: Resource[T],
    *,
    checks: Sequence[Check[T]],
    cleanup: Check[T] | None = None,
) -> None:
    """``DELETE /{collection}/{id}``: ``checks`` in order, ``cleanup``, then 204."""

    async def delete(ctx: Ctx) -> Reply:
        item = res.find(ctx)
        for check in checks:
            check(ctx.state, item)
        if cleanup is not None:
            cleanup(ctx.state, item)
        del res.store(ctx.state)[item.id]
        return Reply(204)

    router.route("DELETE", f"/{res.collection}/{{id}}")(delete)


def protection_endpoint(
    router: Router, res: Resource[P], *, find: Callable[[Ctx], P] | None = None
) -> None:
    """``POST /{collection}/{id}/actions/change_protection`` with the ``delete`` flag."""

    async def change_protection(ctx: Ctx) -> Reply:
        item = find(ctx) if find is not None else res.find(ctx)
        item.protection_delete = optional(ctx.body(), "delete", bool, item.protection_delete)
        return res.start_action(ctx, item, "change_protection")

    router.route("POST", f"/{res.collection}/{{id}}/actions/change_protection")(change_protection)
