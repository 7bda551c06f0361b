"""The HTTP front of the simulated API: rate limit, auth, faults, routing, observability.

Order per request, as the real API behaves: every request (authenticated or not) spends one
rate-limit token ("All requests, whether they are authenticated or not, are subject to rate
limiting", docs.hetzner.cloud "Rate Limiting"); a wrong or missing Bearer token is 401
``unauthorized``; then injected latency and errors; then the endpoint. Every response carries
the ``RateLimit-*`` headers. Paths under ``/_sim/`` are the simulator's own controls and are
neither rate limited nor authenticated.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hk8s.errors import ConfigError
from hk8s.sim._http import Request, Response
from hk8s.sim.hcloud import (
    _api_actions,
    _api_lb,
    _api_network,
    _api_resources,
    _api_server_actions,
    _api_servers,
    _api_volumes,
)
from hk8s.sim.hcloud._errors import ApiError, not_found
from hk8s.sim.hcloud._faults import FaultSpec
from hk8s.sim.hcloud._routing import Ctx, Reply, Router
from hk8s.sim.hcloud._stats import RateLimiter, RequestRecord, Stats
from hk8s.sim.hcloud._views import server_json

if TYPE_CHECKING:
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["HcloudApi", "Observer"]

log = logging.getLogger(__name__)

# Called after every /v1 response: (record, request, response). Tests hook the OpenAPI
# response validator in here.
Observer = Callable[[RequestRecord, Request, Response], None]


def build_router() -> Router:
    router = Router()
    router.include(_api_actions.router)
    router.include(_api_servers.router)
    router.include(_api_server_actions.router)
    router.include(_api_resources.router)
    router.include(_api_network.router)
    router.include(_api_lb.router)
    router.include(_api_volumes.router)
    return router


class HcloudApi:
    """Answers HTTP requests for one simulated project."""

    def __init__(self, state: HcloudState, *, token: str, rate_limit: int = 3600) -> None:
        self.state = state
        self.token = token
        self.router = build_router()
        self.stats = Stats()
        self.limiter = RateLimiter(state.clock, rate_limit)
        self.observers: list[Observer] = []
        self.base_url = ""

    async def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return await self._control(request)
        method = request.method
        sub = request.path[len("/v1") :] if request.path.startswith("/v1/") else None
        template = self.router.template_for(method, sub) if sub is not None else request.path
        try:
            reply = await self._serve(request, method, sub, template)
        except ApiError as exc:
            reply = Reply(exc.status, exc.envelope())
        except Exception as exc:  # a simulator bug: answer like the API's backend would
            log.exception("simulated API failed on %s %s", method, request.path)
            reply = Reply(500, ApiError("server_error", f"internal error: {exc!r}").envelope())
        headers = {
            **self.limiter.headers(),
            **reply.headers,
            "X-Correlation-Id": secrets.token_hex(8),
        }
        if reply.payload is None:
            response = Response(status=reply.status, headers=headers)
        else:
            response = Response.json(reply.payload, status=reply.status, headers=headers)
        code = (reply.payload or {}).get("error", {}).get("code") if reply.status >= 400 else None
        record = RequestRecord(
            self.state.now(),
            method,
            request.path,
            template,
            reply.status,
            code,
            request.headers.get_header("user-agent") or "",
        )
        self.stats.record(record)
        for observer in list(self.observers):
            observer(record, request, response)
        return response

    async def _serve(self, request: Request, method: str, sub: str | None, template: str) -> Reply:
        if not self.limiter.take():
            # docs.hetzner.cloud "Rate Limiting": 429 when the bucket is empty.
            raise ApiError("rate_limit_exceeded", "limit of 3600 requests per hour reached")
        auth = request.headers.get_header("authorization")
        if not secrets.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            raise ApiError("unauthorized", "unable to authenticate")
        if sub is None:
            raise not_found("resource")
        faults = self.state.faults
        if delay := faults.latency(method, sub, template):
            await self.state.clock.sleep(delay)
        if (error := faults.request_error(method, sub, template)) is not None:
            raise error
        route, params = self.router.match(method, sub)
        return await route.handler(Ctx(self.state, request, params, self.base_url))

    # ----------------------------------------------------------------------- /_sim/...
    async def _control(self, request: Request) -> Response:
        path, method = request.path, request.method
        try:
            if (method, path) == ("GET", "/_sim/stats"):
                with_log = request.param("log", "") in ("1", "true")
                return Response.json(self.stats.snapshot(with_log=with_log))
            if (method, path) == ("POST", "/_sim/reset-stats"):
                self.stats.reset()
                return Response.json({"ok": True})
            if (method, path) == ("GET", "/_sim/faults"):
                return Response.json(self.state.faults.spec.model_dump())
            if (method, path) == ("POST", "/_sim/faults"):
                self.state.faults.set(FaultSpec.parse(request.json() or {}, source="POST body"))
                return Response.json(self.state.faults.spec.model_dump())
            if (method, path) == ("POST", "/_sim/rate-limit"):
                self.limiter.set_remaining(int((request.json() or {}).get("remaining", 0)))
                return Response.json(self.limiter.headers())
            if (method, path) == ("GET", "/_sim/servers"):
                servers = [_summary(self.state, s) for s in self.state.servers.values()]
                return Response.json({"servers": servers})
        except (ConfigError, ValueError) as exc:
            return Response.json({"error": {"code": "invalid_input", "message": str(exc)}}, 422)
        return Response.json({"error": {"code": "not_found", "message": "unknown control"}}, 404)


def _summary(state: HcloudState, server: Any) -> dict[str, Any]:
    data = server_json(state, server)
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "public_ipv4": server.public_ipv4,
        "private_net": data["private_net"],
        "rescue_enabled": server.rescue_enabled,
        "in_rescue": server.in_rescue,
        "locked": server.locked,
        "labels": server.labels,
    }
