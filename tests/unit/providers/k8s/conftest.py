"""A scripted HTTP endpoint for KubeClient's transport tests (the wire, not API semantics).

API semantics (server-side apply, Jobs, evictions) are tested against the simulated
Kubernetes API; these tests pin what travels on the wire and how answers become hk8s errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.sim._http import HTTPServer, Request, Response

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@dataclass
class Scripted:
    """Answers (method, path) with queued responses (the last one repeats); records requests.
    Watches are answered by the routes of method "WATCH"; without one, 404."""

    routes: dict[tuple[str, str], list[Response]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    server: HTTPServer | None = None

    def on(self, method: str, path: str, *responses: Response) -> None:
        self.routes[(method, path)] = list(responses)

    def json(self, method: str, path: str, payload: Any, status: int = 200) -> None:
        self.on(method, path, Response.json(payload, status=status))

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        # A watch (``?watch=1``) has its own route: ``on("WATCH", path, ...)``.
        method = "WATCH" if request.query.get("watch") == ["1"] else request.method
        queue = self.routes.get((method, request.path))
        if not queue:
            return Response.json(
                {"kind": "Status", "status": "Failure", "message": "not found", "code": 404},
                status=404,
            )
        return queue.pop(0) if len(queue) > 1 else queue[0]

    @staticmethod
    def failure(code: int, message: str, **extra: Any) -> Response:
        """A Kubernetes ``Status`` error body."""
        body = {"kind": "Status", "status": "Failure", "message": message, "code": code, **extra}
        return Response(
            status=code,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )

    def kubeconfig(self, token: str = "s3cret-bearer") -> dict[str, Any]:
        assert self.server is not None
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "admin@demo",
            "clusters": [{"name": "demo", "cluster": {"server": self.server.url}}],
            "users": [{"name": "admin@demo", "user": {"token": token}}],
            "contexts": [
                {"name": "admin@demo", "context": {"cluster": "demo", "user": "admin@demo"}}
            ],
        }


@pytest.fixture
async def api() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    scripted.server = await HTTPServer(scripted.handle).start("127.0.0.1", 0)
    yield scripted
    await scripted.server.close()
