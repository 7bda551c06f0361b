"""Routing, request parsing, and the list conventions shared by every endpoint.

Lists follow docs.hetzner.cloud "Pagination" (``page`` from 1, ``per_page`` default 25 and at
most 50, ``meta.pagination`` with nulls at the edges, a ``Link`` header), "Label Selector"
(``label_selector``), and the ``name`` and ``sort`` query parameters of openapi.json.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from hk8s.model.labels import LabelError, label_problems, parse_selector
from hk8s.sim.hcloud._errors import ApiError, invalid_input, not_found, uniqueness_error

if TYPE_CHECKING:
    from hk8s.sim._http import Request
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["Ctx", "Reply", "Router", "list_reply"]

T = TypeVar("T")
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 50


@dataclass
class Reply:
    status: int = 200
    payload: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    state: HcloudState
    request: Request
    params: dict[str, str]
    base_url: str

    def body(self) -> dict[str, Any]:
        """The JSON object body; ``json_error`` (400) when it is not one."""
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except ValueError as exc:
            raise ApiError("json_error", f"invalid JSON in request body: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError("json_error", "request body must be a JSON object")
        return data

    def id(self, name: str = "id") -> int:
        raw = self.params[name]
        if not raw.isdigit():
            raise invalid_input(name, "must be an integer")
        return int(raw)

    def query(self, name: str) -> str | None:
        return self.request.param(name)

    def queries(self, name: str) -> list[str]:
        # Array parameters may be repeated (status=a&status=b) or comma separated.
        values: list[str] = []
        for raw in self.request.params(name):
            values += [v for v in raw.split(",") if v]
        return values


Handler = Callable[[Ctx], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Maps ``METHOD /template/{param}`` to handlers; templates name routes in the stats."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        # Ids are integers: /servers/1/actions/unknown is a 404, not GET .../actions/{action_id}.
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[0-9]+)", template) + "$"

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, re.compile(regex), handler))
            return handler

        return register

    def include(self, other: Router) -> None:
        self.routes += other.routes

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed = True
        if allowed:
            raise ApiError("method_not_allowed", f"method {method} is not allowed for {path}")
        raise not_found("resource", None)

    def template_for(self, method: str, path: str) -> str:
        """The route template naming ``path`` in stats and fault patterns."""
        fallback = None
        for route in self.routes:
            if route.pattern.match(path):
                if route.method == method:
                    return route.template
                fallback = fallback or route.template
        return fallback or path


# ------------------------------------------------------------------------------ input checks
def require(body: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    value = body.get(name)
    if value is None:
        raise invalid_input(name, "is required")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid_input(name, "has an invalid type")
    return value


def member(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of a request body (``{}`` when absent), else invalid_input."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_input(name, "must be an object")
    return value


def objects(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A list of objects of a request body (``[]`` when absent), else invalid_input."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid_input(name, "must be an array of objects")
    return value


def as_int(value: Any, name: str) -> int:
    """An id from a request body: an integer (or its decimal string), else invalid_input."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise invalid_input(name, f"{value!r} is not a valid ID")
    return int(value)


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise invalid_input(name, "has an invalid type")
    return value


def labels_of(body: dict[str, Any], default: dict[str, str] | None = None) -> dict[str, str]:
    """``labels`` of a request body, checked against the Labels rules of the reference."""
    value = body.get("labels")
    if value is None:
        return dict(default or {})
    if not isinstance(value, dict):
        raise invalid_input("labels", "must be an object")
    problems = label_problems(value)
    if problems:
        raise invalid_input("labels", *problems)
    return {str(k): str(v) for k, v in value.items()}


def check_name(name: str, taken: Iterable[Any], exclude: int | None = None) -> None:
    """Names are unique per resource type in a project: 409 ``uniqueness_error``."""
    if not name or len(name) > 63:
        raise invalid_input("name", "must be 1-63 characters")
    for item in taken:
        if item.name == name and item.id != exclude:
            raise uniqueness_error("name", "name is already used")


def lookup(collection: dict[int, T], ident: int, kind: str) -> T:
    try:
        return collection[ident]
    except KeyError:
        raise not_found(kind, ident) from None


# ----------------------------------------------------------------------------------- lists
_SORT_KEYS = ("id", "name", "created")


def _sort(ctx: Ctx, items: list[Any], sort_keys: Sequence[str]) -> list[Any]:
    specs = ctx.queries("sort")
    for spec in reversed(specs):
        key, _, order = spec.partition(":")
        if key not in sort_keys or order not in ("", "asc", "desc"):
            raise invalid_input("sort", f"invalid sort value {spec!r}")
        items = sorted(items, key=lambda item: getattr(item, key) or "", reverse=order == "desc")
    return items


def _int_query(ctx: Ctx, name: str, default: int) -> int:
    raw = ctx.query(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise invalid_input(name, "must be a positive integer")
    return int(raw)


def list_reply(
    ctx: Ctx,
    key: str,
    items: Iterable[T],
    render: Callable[[T], dict[str, Any]],
    *,
    labels: bool = True,
    names: bool = True,
    sort_keys: Sequence[str] = _SORT_KEYS,
    extra: dict[str, Any] | None = None,
) -> Reply:
    """Filter by ``name`` and ``label_selector``, sort, paginate, and render one page."""
    selected = list(items)
    if names and (name := ctx.query("name")) is not None:
        selected = [item for item in selected if getattr(item, "name", None) == name]
    if labels and (text := ctx.query("label_selector")) is not None:
        try:
            selector = parse_selector(text)
        except LabelError as exc:
            raise invalid_input("label_selector", exc.message) from None
        selected = [item for item in selected if selector.matches(getattr(item, "labels", {}))]
    selected = _sort(ctx, sorted(selected, key=lambda item: getattr(item, "id", 0)), sort_keys)
    page = _int_query(ctx, "page", 1)
    # The documented maximum is 50; larger values are capped to it.
    per_page = min(_int_query(ctx, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    total = len(selected)
    last = max(1, math.ceil(total / per_page))
    chunk = selected[(page - 1) * per_page : page * per_page]
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last else None,
        "last_page": last,
        "total_entries": total,
    }
    path = ctx.request.path
    # The links keep every other query parameter (label_selector, name, sort, status, ...):
    # a client following "next" must get the next page of the same filtered list.
    kept = [
        (name, value)
        for name, values in ctx.request.query.items()
        if name not in {"page", "per_page"}
        for value in values
    ]
    links = []
    for rel, number in (
        ("prev", pagination["previous_page"]),
        ("next", pagination["next_page"]),
        ("last", last),
    ):
        if number is not None:
            query = urlencode([*kept, ("page", number), ("per_page", per_page)])
            links.append(f'<{ctx.base_url}{path}?{query}>; rel="{rel}"')
    return Reply(
        200,
        {
            key: [render(item) for item in chunk],
            **(extra or {}),
            "meta": {"pagination": pagination},
        },
        {"Link": ", ".join(links)} if links else {},
    )
