"""PacedAdapter on 429: waits for the bucket without spending attempts, up to a deadline."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from hk8s.errors import RateLimitedError, TransientAPIError
from hk8s.model import ManualClock, Timing
from hk8s.providers.hcloud import PacedAdapter, RateLimiter

EPOCH = 1_000_000.0


def response(status: int, code: str | None = None, remaining: int = 0) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    body: dict[str, Any] = {"error": {"code": code, "message": code}} if code else {}
    r._content = json.dumps(body).encode()
    r.headers.update(
        {
            "RateLimit-Limit": "3600",
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(int(EPOCH + 3600 - remaining)),
        }
    )
    return r


LIMITED = ("429", 429, "rate_limit_exceeded")


class ScriptedHTTP(HTTPAdapter):
    """Answers from a script instead of the network; the last entry repeats forever."""

    script: list[tuple[str, int, str | None]]

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        _, status, code = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return response(status, code)


class Adapter(PacedAdapter, ScriptedHTTP):
    """PacedAdapter whose ``super().send`` is the script (method resolution order)."""


async def send(script: list[tuple[str, int, str | None]], timing: Timing) -> tuple[Adapter, Any]:
    clock = ManualClock()
    limiter = RateLimiter(clock, epoch=lambda: EPOCH + clock.now(), rng=random.Random(1))
    adapter = Adapter(limiter, clock, timing, rng=random.Random(2))
    adapter.script = list(script)
    adapter.loop = asyncio.get_running_loop()
    request = requests.Request("GET", "http://127.0.0.1:9/v1/servers").prepare()
    try:
        result: Any = await asyncio.to_thread(adapter.send, request)
    except Exception as exc:  # returned for the assertions
        result = exc
    return adapter, result


async def test_429s_never_count_against_the_retry_attempts() -> None:
    timing = Timing()
    adapter, result = await send([LIMITED] * 12 + [("ok", 200, None)], timing)
    assert isinstance(result, requests.Response) and result.status_code == 200
    assert adapter.sent == 13 > timing.retry_attempts
    assert adapter.limiter.throttled == 12


async def test_other_failures_still_count_and_429s_in_between_do_not() -> None:
    timing = Timing()
    script = [("503", 503, "unavailable"), LIMITED] * (timing.retry_attempts - 1)
    adapter, result = await send([*script, ("ok", 200, None)], timing)
    assert isinstance(result, requests.Response) and result.status_code == 200
    adapter, result = await send([("503", 503, "unavailable")], timing)
    assert isinstance(result, TransientAPIError)
    assert adapter.sent == timing.retry_attempts


async def test_a_429_waits_on_the_clock_for_the_bucket_not_for_a_backoff() -> None:
    timing = Timing()
    adapter, result = await send([LIMITED, ("ok", 200, None)], timing)
    assert isinstance(result, requests.Response)
    clock = adapter.clock
    assert isinstance(clock, ManualClock)
    # One token per second (3600 missing, full in 3600 s); our share halved: 2 s, jittered.
    assert clock.slept and 1.0 <= sum(clock.slept) <= 3.0


async def test_a_bucket_drained_past_the_deadline_raises_rate_limited_with_a_hint() -> None:
    timing = Timing(action_timeout=120.0)
    adapter, result = await send([LIMITED], timing)
    assert isinstance(result, RateLimitedError)
    assert "still rate limited" in str(result) and "GET /v1/servers" in str(result)
    assert result.hint is not None and "same token" in result.hint
    assert result.reset_at is not None
    clock = adapter.clock
    assert isinstance(clock, ManualClock)
    # It waited for the bucket, and gave up as soon as the next try lay past the deadline.
    assert 30.0 <= clock.now() < timing.action_timeout
    assert adapter.limiter.resume_at() > timing.action_timeout
    # Backing off: far fewer requests than one per refilled token.
    assert adapter.sent < 40


async def test_a_429_without_an_error_body_is_rate_limited_too() -> None:
    adapter, result = await send([("x", 429, None), ("ok", 200, None)], Timing())
    assert isinstance(result, requests.Response) and adapter.limiter.throttled == 1
