"""The provider's core: the hcloud client, its worker threads, error translation, actions.

``HCLOUD_ENDPOINT`` is honoured as the hcloud CLI does (default
``https://api.hetzner.cloud/v1``). The token only ever sits in the library's Authorization
header; it is not stored elsewhere, logged, or put in any message.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import hcloud

from hk8s import __version__
from hk8s.errors import AuthError, Hk8sError
from hk8s.model.clock import SystemClock
from hk8s.model.resources import Action
from hk8s.model.timing import Timing
from hk8s.providers.hcloud._actions import ActionWaiter
from hk8s.providers.hcloud._convert import to_action
from hk8s.providers.hcloud._errors import translate
from hk8s.providers.hcloud._ratelimit import DEFAULT_TOKEN_INTERVAL, RateLimiter
from hk8s.providers.hcloud._transport import PacedAdapter

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterable, Sequence

    from hk8s.model.clock import Clock

__all__ = ["DEFAULT_ENDPOINT", "ENDPOINT_ENV", "TOKEN_ENV", "ProviderBase"]

ENDPOINT_ENV = "HCLOUD_ENDPOINT"
TOKEN_ENV = "HCLOUD_TOKEN"
DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"

_T = TypeVar("_T")


class ProviderBase:
    """Owns the ``hcloud.Client``; runs its blocking calls in threads, concurrently."""

    def __init__(
        self,
        token: str,
        *,
        endpoint: str | None = None,
        clock: Clock | None = None,
        timing: Timing | None = None,
        limiter: RateLimiter | None = None,
        max_workers: int = 16,
        rng: random.Random | None = None,
    ) -> None:
        if not token:
            raise AuthError(
                "no Hetzner Cloud API token",
                hint=f"export {TOKEN_ENV}=<a read/write token of the project>",
            )
        self.endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
        self.clock: Clock = clock or SystemClock()
        self.timing = timing or Timing.from_env()
        # The bucket refills one request per second; scaled with the rest of Timing.
        token_interval = DEFAULT_TOKEN_INTERVAL * self.timing.retry_initial / Timing.retry_initial
        self.limiter = limiter or RateLimiter(self.clock, token_interval=token_interval)
        self.adapter = PacedAdapter(self.limiter, self.clock, self.timing, rng=rng)
        self.client = hcloud.Client(
            token=token,
            api_endpoint=self.endpoint,
            application_name="hk8s",
            application_version=__version__,
            timeout=self.adapter.timeout,
        )
        _mount(self.client, self.adapter)
        self._threads = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hcloud")
        self.actions = ActionWaiter(self._fetch_actions, self.clock, self.timing)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _run(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a blocking library call in a worker thread; hk8s errors out."""
        loop = asyncio.get_running_loop()
        self.adapter.loop = loop
        try:
            return await loop.run_in_executor(self._threads, functools.partial(fn, *args, **kwargs))
        except Hk8sError:
            raise
        except Exception as exc:
            raise translate(exc, what) from exc

    async def _fetch_actions(self, ids: list[int]) -> list[Action]:
        body = await self._run(
            "poll actions", self.client.request, "GET", "/actions", params={"id": ids}
        )
        return [to_action(raw) for raw in body.get("actions", [])]

    async def _wait_bound(self, actions: Iterable[Any]) -> None:
        """Wait for library ``BoundAction``s (None entries are skipped)."""
        converted = [_bound_action(a) for a in actions if a is not None]
        if converted:
            await self.actions.wait(converted)

    async def wait_actions(self, action_ids: Sequence[int]) -> list[Action]:
        pending = [_running(i) for i in action_ids]
        return await self.actions.wait(pending)


def _running(action_id: int) -> Action:
    return Action(action_id, "", "running")


def _bound_action(bound: Any) -> Action:
    m = getattr(bound, "data_model", bound)
    error = m.error or {}
    return to_action(
        {
            "id": m.id,
            "command": m.command,
            "status": m.status,
            "progress": m.progress,
            "error": error,
        }
    )


def _mount(client: hcloud.Client, adapter: PacedAdapter) -> None:
    """Route every request of ``client`` through ``adapter``.

    hcloud 2.27 creates its ``requests.Session`` in ``ClientBase.__init__`` and has no
    parameter to pass one in, so we reach the session it owns and mount our adapter with
    requests' public ``Session.mount``. No library method is replaced. The test
    ``test_every_request_goes_through_the_adapter`` fails if an upgrade moves the session.
    """
    for base in (client._client, client._client_hetzner):
        session = base._session
        session.mount("https://", adapter)
        session.mount("http://", adapter)
