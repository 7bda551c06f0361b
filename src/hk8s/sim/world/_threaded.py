"""The world for synchronous callers (a thread with its own loop) and for ``hk8s sim up``."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.sim.world._world import World

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from hk8s.sim.world._faults import WorldFaults

__all__ = ["ThreadedWorld", "run_world"]

T = TypeVar("T")


class ThreadedWorld:
    """A ``World`` on its own loop in a daemon thread: ``env``, ``run(coro)``, ``call(fn)``.

    Touch the world's objects only through ``call``/``run`` while it runs: they belong to
    its loop.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sim-world", daemon=True)
        self.env: dict[str, str] = {}

    def __enter__(self) -> ThreadedWorld:
        self._thread.start()
        self.run(self.world.serve())
        self.env = self.world.env()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.world.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)


async def run_world(
    *,
    speed: float = 1.0,
    faults: WorldFaults | None = None,
    token: str | None = None,
    host: str = "127.0.0.1",
    ready: Callable[[World], None] | None = None,
) -> None:
    """Run the world until cancelled (``hk8s sim up``); ``ready(world)`` once it serves."""
    async with World.start(speed=speed, faults=faults, token=token, host=host) as world:
        if ready is not None:
            ready(world)
        await asyncio.Event().wait()
