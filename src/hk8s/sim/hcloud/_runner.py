"""Running the simulated API: in an event loop you own, or in a background thread.

>>> # async with HcloudSim.start(speed=50) as sim:
>>> #     client = hcloud.Client(token=sim.token, api_endpoint=sim.endpoint)
>>> # with run_in_thread(speed=50) as sim:   # for synchronous tests and CLI e2e tests
>>> #     subprocess.run(["hk8s", "infra"], env={**os.environ, **sim.env()})
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.model.clock import Clock, ScaledClock
from hk8s.model.timing import TIME_SCALE_ENV
from hk8s.sim._http import HTTPServer
from hk8s.sim.hcloud._app import HcloudApi
from hk8s.sim.hcloud._catalog import SYSTEM_IMAGES
from hk8s.sim.hcloud._faults import FaultInjector, FaultSpec
from hk8s.sim.hcloud._lb import LoadBalancerWorld, Probe
from hk8s.sim.hcloud._model import Image
from hk8s.sim.hcloud._state import Durations, HcloudState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator

    from hk8s.sim.hcloud._stats import Stats

__all__ = ["HcloudSim", "ThreadedSim", "run_in_thread"]

T = TypeVar("T")


class HcloudSim:
    """A running simulated Hetzner Cloud API: ``endpoint``, ``token``, ``state``, ``stats``."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        clock: Clock | None = None,
        faults: FaultSpec | None = None,
        token: str | None = None,
        durations: Durations | None = None,
        rate_limit: int = 3600,
        health_probe: Probe | None = None,
        server_ips: str = "127.1.0.0/16",
        lb_ips: str = "127.2.0.0/16",
    ) -> None:
        self.speed = speed
        self.clock: Clock = clock or ScaledClock(speed)
        self.token = token or f"hk8s-sim-{secrets.token_hex(16)}"
        self.state = HcloudState(
            clock=self.clock,
            durations=durations,
            faults=FaultInjector(faults),
            server_ips=server_ips,
            lb_ips=lb_ips,
        )
        _seed_system_images(self.state)
        self.api = HcloudApi(self.state, token=self.token, rate_limit=rate_limit)
        self.load_balancers = LoadBalancerWorld(self.state, health_probe)
        self._http: HTTPServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._closers: list[Callable[[], Awaitable[None]]] = []
        # Variables other parts of the world add to ``env()`` (e.g. HK8S_PORT_MAP).
        self.extra_env: dict[str, str] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, host: str = "127.0.0.1", port: int = 0, **kwargs: Any
    ) -> AsyncIterator[HcloudSim]:
        """Serve on ``host:port`` (0 picks a free port) until the block ends."""
        sim = cls(**kwargs)
        await sim.serve(host, port)
        try:
            yield sim
        finally:
            await sim.close()

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._http = await HTTPServer(self.api.handle).start(host, port)
        self.api.base_url = self._http.url
        self.add_task(self.load_balancers.run())

    @property
    def endpoint(self) -> str:
        """The ``HCLOUD_ENDPOINT`` value, e.g. ``http://127.0.0.1:41234/v1``."""
        if self._http is None:
            raise RuntimeError("the simulator is not serving yet")
        return f"{self._http.url}/v1"

    @property
    def stats(self) -> Stats:
        return self.api.stats

    def env(self) -> dict[str, str]:
        """The environment a client of this simulator needs."""
        return {
            "HCLOUD_ENDPOINT": self.endpoint,
            "HCLOUD_TOKEN": self.token,
            TIME_SCALE_ENV: f"{self.speed:g}",
            **self.extra_env,
        }

    def add_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run another part of the simulated world alongside; ``close`` cancels and awaits
        it (a task that ended on its own is forgotten)."""
        if self._closed:
            coro.close()
            raise RuntimeError("the simulator is closed")
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Call ``closer`` first when the simulator stops (other parts' servers)."""
        self._closers.append(closer)

    def set_faults(self, spec: FaultSpec) -> None:
        self.state.faults.set(spec)

    async def close(self) -> None:
        """Stop the other parts' servers, cancel and await every task (``add_task``, the load
        balancers, in-flight actions), then stop serving; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # gather, not suppress(CancelledError) per task: cancelling close() itself must still
        # cancel its caller.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self.state.close()
        if self._http is not None:
            await self._http.close()


def _seed_system_images(state: HcloudState) -> None:
    for image in SYSTEM_IMAGES:
        state.images[image.id] = Image(
            image.id,
            "system",
            image.name,
            f"{image.os_flavor.title()} {image.os_version}",
            image.architecture,
            0.0,
            os_flavor=image.os_flavor,
            os_version=image.os_version,
            disk_size=5,
            image_size=None,
        )


class ThreadedSim:
    """An ``HcloudSim`` on its own event loop in a daemon thread, for synchronous callers.

    ``call(fn)`` runs ``fn()`` on the simulator's loop (touch ``state`` only that way while it
    runs); ``run(coro)`` runs a coroutine there and returns its result.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        self._host, self._port, self._kwargs = host, port, kwargs
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="hcloud-sim", daemon=True
        )
        self.sim: HcloudSim

    def __enter__(self) -> HcloudSim:
        self._thread.start()

        async def boot() -> HcloudSim:
            sim = HcloudSim(**self._kwargs)
            await sim.serve(self._host, self._port)
            return sim

        self.sim = self.run(boot())
        return self.sim

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.sim.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        future: Future[T] = Future()

        def invoke() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(invoke)
        return future.result(timeout)


@contextlib.contextmanager
def run_in_thread(host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> Iterator[ThreadedSim]:
    """Start a simulator in a background thread; yields the ``ThreadedSim`` (``.sim`` inside)."""
    threaded = ThreadedSim(host, port, **kwargs)
    with threaded:
        yield threaded
