"""The HTTP layer under the ``hcloud`` library: pacing, timeouts, retries, error mapping.

hcloud 2.27 sends every request through one ``requests.Session`` it creates itself and offers
no parameter to pass one in. requests' documented extension point for this is a transport
adapter (``Session.mount``), so hk8s mounts ``PacedAdapter`` on that session: every request the
library makes, including pagination and ``Client.request``, passes the shared rate limiter,
carries a timeout, and is retried here with jittered exponential backoff on ``locked``,
``conflict``, 5xx, timeouts and connection errors. A 429 is no failed attempt: the request
goes back to the limiter, which holds it until the bucket has refilled for this process'
share, for up to ``Timing.action_timeout`` in all (a shared bucket can stay drained for a
while, and giving up after eight quick 429s made parallel pipelines fail). The library's own
retry loop (which sleeps with ``time.sleep``, outside hk8s' clock) never sees any of those:
we raise ``TransientAPIError``/``RateLimitedError`` ourselves.

The library is synchronous and runs in worker threads; waiting (limiter, backoff) happens on
the event loop through ``asyncio.run_coroutine_threadsafe`` so that it uses the injected
``Clock`` and the one limiter shared by all threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from hk8s.errors import PermanentError, RateLimitedError, TransientAPIError
from hk8s.model import changes

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from hk8s.model.clock import Clock
    from hk8s.model.timing import Timing
    from hk8s.providers.hcloud._ratelimit import RateLimiter

__all__ = ["RETRYABLE_CODES", "RETRYABLE_STATUS", "PacedAdapter", "backoff_delay"]

# Error codes worth another attempt (docs.hetzner.cloud "Errors": conflict = "The resource has
# changed during the request, please retry"; locked = "there is already an Action running").
RETRYABLE_CODES = frozenset(
    {"locked", "conflict", "rate_limit_exceeded", "timeout", "unavailable", "server_error"}
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

_T = TypeVar("_T")


def backoff_delay(attempt: int, timing: Timing, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform(initial, min(max, initial * 2**attempt))."""
    ceiling = timing.retry_delay(attempt + 1)
    return rng.uniform(timing.retry_initial, max(timing.retry_initial, ceiling))


def _error_code(response: requests.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _check_json(what: str, response: requests.Response) -> None:
    """Every answer of the Hetzner API is JSON (or empty). Anything else means HCLOUD_ENDPOINT
    points at some other server (a web page, a proxy's login form): say so, instead of the
    library's "list servers: OK (200)" after it failed to read the body."""
    content = response.content or b""
    if not content.strip():
        return
    try:
        json.loads(content)
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise PermanentError(
            f"Hetzner API {what}: the endpoint answered {response.status_code} with {kind}, "
            "not JSON; this is not the Hetzner Cloud API",
            hint="check HCLOUD_ENDPOINT (default https://api.hetzner.cloud/v1), or unset it",
        ) from None


class PacedAdapter(HTTPAdapter):
    """A requests transport adapter that paces, times out and retries every request."""

    def __init__(
        self,
        limiter: RateLimiter,
        clock: Clock,
        timing: Timing,
        *,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=32)
        self.limiter = limiter
        self.clock = clock
        self.timing = timing
        # Never below 2 s of wall time, whatever HK8S_TIME_SCALE says (see Timing).
        self.timeout = max(2.0, timing.request_timeout)
        # How long one request may keep waiting for the rate-limit bucket, 429 after 429.
        self.rate_limit_timeout = timing.action_timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        self._rng = rng or random.Random()
        self.sent = 0  # requests put on the wire, retries included

    def _wait(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` (a clock wait) on the event loop and block this worker thread on it.

        Checks every half second of wall time that the loop still runs: after Ctrl-C the loop
        is gone, and a worker blocked forever would keep the interpreter from exiting.
        """
        loop = self.loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError("PacedAdapter used outside the provider's event loop")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        while True:
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                if loop.is_closed() or not loop.is_running():
                    future.cancel()
                    raise RuntimeError("the event loop stopped while a request waited") from None

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        # The path only: query strings are harmless, but the URL is all we ever print.
        what = f"{request.method} {urlsplit(request.url or '').path}"
        attempts = max(1, self.timing.retry_attempts)
        started = self.clock.now()
        deadline = started + self.rate_limit_timeout
        failures = 0  # failed attempts; a 429 is not one, it only means "wait for the bucket"
        mutating = request.method not in ("GET", "HEAD", "OPTIONS")
        try:
            response = self._send_paced(request, what, attempts, started, deadline, failures,
                                        (stream, timeout, verify, cert, proxies))  # fmt: skip
        except Exception:
            # Sent but unanswered (or answered 5xx): it may have been applied.
            if mutating and self.sent:
                changes.record("hetzner")
            raise
        if mutating and response.status_code < 400:
            changes.record("hetzner")
        return response

    def _send_paced(
        self,
        request: requests.PreparedRequest,
        what: str,
        attempts: int,
        started: float,
        deadline: float,
        failures: int,
        rest: tuple[Any, Any, Any, Any, Any],
    ) -> requests.Response:
        stream, timeout, verify, cert, proxies = rest
        while True:
            ticket = self._wait(self.limiter.acquire())
            self.sent += 1
            try:
                response = super().send(
                    request, stream, timeout or self.timeout, verify, cert, proxies
                )
                # Read the body here, so a connection dropped mid-body is retried too.
                _ = response.content
            except requests.RequestException as exc:
                failures += 1
                if failures >= attempts:
                    raise TransientAPIError(
                        f"Hetzner API {what}: {type(exc).__name__} after {attempts} attempts",
                        hint="check HCLOUD_ENDPOINT and the network, then run again",
                    ) from exc
            else:
                # Plain attribute updates under the limiter's lock, safe from a worker thread;
                # done before the next acquire() so a 429 blocks our own retry too.
                self.limiter.observe(response.status_code, response.headers, ticket)
                code = _error_code(response)
                if response.status_code == 429 or code == "rate_limit_exceeded":
                    # The limiter now holds every request of this process until the bucket
                    # has a token for our share: no backoff on top, no attempt spent.
                    if self.limiter.resume_at() > deadline:
                        waited = self.clock.now() - started
                        raise self._rate_limited(what, response, code, waited)
                    response.close()
                    continue
                if response.status_code not in RETRYABLE_STATUS and code not in RETRYABLE_CODES:
                    _check_json(what, response)
                    return response
                failures += 1
                if failures >= attempts:
                    raise self._give_up(what, response, code, attempts)
                response.close()
            self._wait(self.clock.sleep(backoff_delay(failures - 1, self.timing, self._rng)))

    def _rate_limited(
        self, what: str, response: requests.Response, code: str | None, waited: float
    ) -> RateLimitedError:
        limit = self.limiter.limit
        budget = f"a bucket of {limit} requests, one back per second" if limit else "its bucket"
        return RateLimitedError(
            f"Hetzner API {what}: still rate limited (429 {code or 'rate_limit_exceeded'}) "
            f"after {waited:.0f} s of waiting for the project's bucket to refill (limit: "
            f"{self.rate_limit_timeout:g} s)",
            hint=(
                f"the project's API budget ({budget}) is used up, most likely by another "
                "process with the same token (a parallel CI pipeline, another hk8s run); let "
                "it finish or give each pipeline its own project, then run again"
            ),
            reset_at=self.limiter.reset_at(),
            code=code,
            correlation_id=response.headers.get("X-Correlation-Id"),
        )

    def _give_up(
        self, what: str, response: requests.Response, code: str | None, attempts: int
    ) -> Exception:
        return TransientAPIError(
            f"Hetzner API {what}: {code or response.status_code} after {attempts} attempts",
            hint="the API is busy or failing; run the command again later",
            code=code,
            status=response.status_code,
            correlation_id=response.headers.get("X-Correlation-Id"),
        )
