"""What the simulated cloud controllers share: a list+watch cache, a work queue, Events.

Real controllers are built from client-go's informers (a reflector that lists, then watches
from the list's resourceVersion and relists on ``410 Gone``, feeding a local store) and a
rate-limited work queue of object keys, processed one key at a time. ``Informer`` and
``Controller`` are that, in small, over ``KubeClient``; ``record_event`` writes a core/v1
Event the way client-go's event recorder does, so ``kubectl describe`` shows what the
controllers did and why they failed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from typing import TYPE_CHECKING, Any

from hk8s.model.clock import Clock, ScaledClock
from hk8s.sim.k8s._client import ApiError, WatchExpired

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from hk8s.sim.k8s._client import KubeClient

__all__ = ["Controller", "Informer", "key_of", "now_rfc3339", "record_event"]

log = logging.getLogger(__name__)
_RETRY = 1.0


def key_of(obj: dict[str, Any]) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's cache key)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), str(meta.get("name", ""))
    return f"{ns}/{name}" if ns else name


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Informer:
    """A cache of one resource (``path``, e.g. ``/api/v1/services``) kept by list+watch.

    ``on_change(key)`` is called for every object added, changed or deleted (deleted objects
    are gone from ``items`` when it runs); ``synced`` is set after the first list.
    """

    def __init__(
        self,
        api: KubeClient,
        path: str,
        on_change: Callable[[str], None],
        *,
        clock: Clock,
        **query: str,
    ) -> None:
        self.api, self.path, self.query = api, path, query
        self.on_change, self.clock = on_change, clock
        self.items: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                version = await self._list()
                async for kind, obj in self.api.watch(
                    self.path, resource_version=version, timeout=240, **self.query
                ):
                    if kind == "BOOKMARK":
                        continue
                    key = key_of(obj)
                    if kind == "DELETED":
                        self.items.pop(key, None)
                    else:
                        self.items[key] = obj
                    self.on_change(key)
            except WatchExpired:
                continue
            except (ApiError, OSError) as exc:  # the API is down or restarting: list again
                log.debug("informer %s: %s", self.path, exc)
                await self.clock.sleep(_RETRY)

    async def _list(self) -> str:
        listed = await self.api.get(self.path, **self.query)
        fresh = {key_of(obj): obj for obj in listed.get("items") or []}
        gone = set(self.items) - set(fresh)
        self.items = fresh
        self.synced.set()
        for key in [*fresh, *gone]:
            self.on_change(key)
        return str((listed.get("metadata") or {}).get("resourceVersion", ""))


class Controller(abc.ABC):
    """A work queue of keys, reconciled one at a time, retried with backoff on failure.

    Subclasses add informers (``self.informer(path)``) and implement ``reconcile(key)``;
    ``run()`` serves until ``stop()``.
    """

    name = "controller"

    def __init__(self, api: KubeClient, *, clock: Clock | None = None) -> None:
        self.api = api
        self.clock: Clock = clock or ScaledClock(1.0)
        self._informers: list[Informer] = []
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._failures: dict[str, int] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()

    def informer(self, path: str, on_change: Callable[[str], None] | None = None) -> Informer:
        informer = Informer(self.api, path, on_change or self.enqueue, clock=self.clock)
        self._informers.append(informer)
        return informer

    def enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _later(self, key: str, seconds: float) -> None:
        async def wait() -> None:
            await self.clock.sleep(seconds)
            self.enqueue(key)

        self._spawn(wait())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    @abc.abstractmethod
    async def reconcile(self, key: str) -> None:
        """Make the world match the object ``key`` (it may be gone); raise to retry."""

    async def started(self) -> None:
        """Return once every informer has listed (the controller sees the cluster)."""
        await asyncio.gather(*(i.synced.wait() for i in self._informers))

    async def run(self) -> None:
        """Serve until ``stop()``: informers feed the queue, one worker drains it."""
        for informer in self._informers:
            self._spawn(informer.run())
        try:
            while not self._stopped.is_set():
                getter = asyncio.ensure_future(self._queue.get())
                stopper = asyncio.ensure_future(self._stopped.wait())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                stopper.cancel()
                key = getter.result()
                self._queued.discard(key)
                await self._process(key)
        finally:
            await self._cancel_all()

    async def _process(self, key: str) -> None:
        try:
            await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a controller logs, backs off and retries
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            log.info("%s: %s: %s (retry %d)", self.name, key, exc, failures)
            # client-go's default controller rate limiter: 5 ms doubling per failure, here
            # from 0.5 s up to 30 s.
            self._later(key, min(30.0, 0.5 * 2 ** (failures - 1)))
        else:
            self._failures.pop(key, None)

    async def stop(self) -> None:
        self._stopped.set()
        await self._cancel_all()

    async def _cancel_all(self) -> None:
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def record_event(
    api: KubeClient,
    obj: dict[str, Any],
    kind: str,
    event_type: str,
    reason: str,
    message: str,
    component: str,
) -> None:
    """A core/v1 Event about ``obj`` (``kubectl describe`` lists them); never fails the caller."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    stamp = now_rfc3339()
    event = {
        "metadata": {
            "name": f"{meta.get('name', '')}.{secrets.token_hex(8)}",
            "namespace": namespace,
        },
        "involvedObject": {
            "kind": kind,
            "apiVersion": obj.get("apiVersion", "v1"),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "type": event_type,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    with contextlib.suppress(ApiError, OSError):
        await api.create(f"/api/v1/namespaces/{namespace}/events", event)
