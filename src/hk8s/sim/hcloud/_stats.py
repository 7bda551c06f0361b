"""Observability (request log, counters) and the rate limit of the simulated API.

The rate limit follows docs.hetzner.cloud "Rate Limiting": 3600 requests per hour and project,
a bucket that refills by one request per second, ``RateLimit-Limit``/``-Remaining``/``-Reset``
headers on every response (also unauthenticated ones), and 429 ``rate_limit_exceeded`` when
empty. Refill runs on the simulator's clock, so at speed 20 it refills 20 per wall second.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hk8s.model.clock import Clock

__all__ = ["RateLimiter", "RequestRecord", "Stats"]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RequestRecord:
    at: float  # simulator clock seconds
    method: str
    path: str
    route: str  # the route template, e.g. /servers/{id}/actions/poweron
    status: int
    code: str | None  # the error code for error responses
    agent: str = ""  # the client's User-Agent (hk8s, or an addon's cloud side)

    @property
    def client(self) -> str:
        """The User-Agent's first product: ``hk8s`` for hk8s,
        ``hcloud-cloud-controller-manager`` for the simulated CCM."""
        return self.agent.split("/")[0].split(" ")[0]


@dataclass
class Stats:
    """What the simulator served; ``snapshot()`` is also ``GET /_sim/stats``."""

    log: list[RequestRecord] = field(default_factory=list)
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_error: Counter[str] = field(default_factory=Counter)
    mutating: int = 0
    reads: int = 0
    rate_limited: int = 0
    max_log: int = 100_000

    def record(self, record: RequestRecord) -> None:
        if len(self.log) < self.max_log:
            self.log.append(record)
        self.by_route[f"{record.method} {record.route}"] += 1
        self.by_status[record.status] += 1
        if record.method in MUTATING:
            self.mutating += 1
        else:
            self.reads += 1
        if record.code is not None:
            self.by_error[record.code] += 1
        if record.status == 429:
            self.rate_limited += 1

    @property
    def total(self) -> int:
        return self.mutating + self.reads

    def count(self, method: str, route: str) -> int:
        return self.by_route[f"{method.upper()} {route}"]

    def routes_of(self, client: str) -> Counter[str]:
        """Requests per route made by ``client`` (see ``RequestRecord.client``)."""
        return Counter(f"{r.method} {r.route}" for r in self.log if r.client == client)

    def reset(self) -> None:
        self.log.clear()
        self.by_route.clear()
        self.by_status.clear()
        self.by_error.clear()
        self.mutating = self.reads = self.rate_limited = 0

    def snapshot(self, *, with_log: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "total": self.total,
            "mutating": self.mutating,
            "reads": self.reads,
            "rate_limited": self.rate_limited,
            "by_route": dict(sorted(self.by_route.items())),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_error": dict(sorted(self.by_error.items())),
        }
        if with_log:
            data["log"] = [asdict(r) for r in self.log]
        return data


class RateLimiter:
    """A token bucket of ``limit`` requests refilling ``refill_per_second`` on the sim clock."""

    def __init__(self, clock: Clock, limit: int = 3600, refill_per_second: float = 1.0) -> None:
        self.clock = clock
        self.limit = limit
        self.refill = refill_per_second
        self._tokens = float(limit)
        self._at = clock.now()
        self._speed = float(getattr(clock, "speed", 1.0))

    def _update(self) -> None:
        now = self.clock.now()
        self._tokens = min(float(self.limit), self._tokens + (now - self._at) * self.refill)
        self._at = now

    def take(self) -> bool:
        """Spend one request; False when the bucket is empty (answer 429)."""
        self._update()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def set_remaining(self, remaining: int) -> None:
        self._update()
        self._tokens = float(max(0, min(self.limit, remaining)))

    def headers(self) -> dict[str, str]:
        self._update()
        remaining = math.floor(self._tokens)
        # RateLimit-Reset is a UNIX time (wall clock): when the bucket will be full again.
        # Sim seconds are converted to wall seconds with the clock's speed.
        missing = (self.limit - self._tokens) / self.refill if self.refill > 0 else 0.0
        reset = math.ceil(time.time() + missing / self._speed)
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }
