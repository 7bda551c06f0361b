"""The world for synchronous callers (a thread with its own loop) and for ``hk8s sim up``."""

from __future__ import annotations

import asyncio
import contextlib
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
            try:
                # A thread of the default executor still blocked after 10 s is left behind
                # (a daemon, like this loop's): exiting the block matters more.
                with contextlib.suppress(TimeoutError):
                    self.run(_finish_loop(), timeout=10.0)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(5)
                if not self.loop.is_running():
                    self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)


async def _finish_loop() -> None:
    """What ``asyncio.run`` does before closing its loop: cancel what callers left running
    through ``run`` (the world's own tasks are gone after ``World.close``), finalize async
    generators, and join the default executor's threads (``asyncio.to_thread``)."""
    loop = asyncio.get_running_loop()
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


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
