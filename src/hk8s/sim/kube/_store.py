"""The simulated etcd: objects by (resource, namespace, name), a resourceVersion counter, and
the event history watches replay from.

Every write bumps one global resourceVersion, as etcd's revision does, so a client can list,
remember ``metadata.resourceVersion`` of the list and watch from there without a gap.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hk8s.model.etcd_snapshot import KeyValue

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from hk8s.model import Clock
    from hk8s.sim.kube._resources import ResourceType

__all__ = ["Event", "Store", "clone"]

Obj = dict[str, Any]
# How many events a watch can replay; older resourceVersions get 410 Expired like a compacted
# etcd (the apiserver's watch cache is a bounded window too).
HISTORY = 20_000


def clone(obj: Obj) -> Obj:
    """A deep copy of a JSON-like object (pickle round trip: several times faster than
    ``copy.deepcopy``, which dominated the control loop's time)."""
    copied: Obj = pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return copied


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    key: str  # ResourceType.key
    rv: int
    obj: Obj


class Store:
    def __init__(self, clock: Clock, *, history: int = HISTORY) -> None:
        self._clock = clock
        self._epoch = datetime.now(UTC) - timedelta(seconds=clock.now())
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self.rv = 1
        self.history: deque[Event] = deque(maxlen=history)
        self._watchers: set[asyncio.Queue[Event]] = set()
        self.changed = asyncio.Event()

    def timestamp(self, offset: float = 0.0) -> str:
        moment = self._epoch + timedelta(seconds=self._clock.now() + offset)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def seconds_since(self, stamp: str) -> float:
        """Clock seconds from a timestamp written by ``timestamp()`` until now."""
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return (self._epoch + timedelta(seconds=self._clock.now()) - then).total_seconds()

    @property
    def oldest_rv(self) -> int:
        return self.history[0].rv if self.history else self.rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get((rt.key, namespace if rt.namespaced else "", name))
        return clone(obj) if obj is not None else None

    def peek(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        """The stored objects themselves, for read-only scans by the controllers: callers
        must not modify them (writes go through ``update`` with a copy)."""
        return [
            obj
            for (key, ns, _), obj in self._objects.items()
            if key == rt.key and (namespace is None or ns == namespace)
        ]

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        items = [
            clone(obj)
            for (key, ns, _), obj in self._objects.items()
            if key == rt.key and (namespace is None or ns == namespace)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        """Store a new object, filling uid, resourceVersion, creationTimestamp, generation."""
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.timestamp()
        if "spec" in obj:
            meta["generation"] = 1
        return self._write(rt, obj, "ADDED")

    def update(self, rt: ResourceType, obj: Obj, old: Obj) -> Obj:
        """Replace ``old`` by ``obj``; a spec change bumps ``metadata.generation``."""
        meta = obj.setdefault("metadata", {})
        for kept in ("uid", "creationTimestamp", "generation"):
            if kept in old["metadata"]:
                meta[kept] = old["metadata"][kept]
        if obj.get("spec") != old.get("spec") and "spec" in obj:
            meta["generation"] = int(meta.get("generation") or 0) + 1
        if obj == old:
            return clone(old)  # a no-op write does not bump resourceVersion
        return self._write(rt, obj, "MODIFIED")

    def delete(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        key = (rt.key, namespace if rt.namespaced else "", name)
        obj = self._objects.pop(key, None)
        if obj is None:
            return None
        self.rv += 1
        gone = clone(obj)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._publish(Event("DELETED", rt.key, self.rv, gone))
        return clone(gone)

    def _write(self, rt: ResourceType, obj: Obj, kind: str) -> Obj:
        self.rv += 1
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        obj["metadata"]["resourceVersion"] = str(self.rv)
        meta = obj["metadata"]
        key = (rt.key, meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        # One copy, shared by the store and the event: neither is ever modified in place.
        stored = clone(obj)
        self._objects[key] = stored
        self._publish(Event(kind, rt.key, self.rv, stored))
        return obj

    def _publish(self, event: Event) -> None:
        self.history.append(event)
        for queue in self._watchers:
            queue.put_nowait(event)
        self.changed.set()

    def keyspace(self) -> Sequence[KeyValue]:
        """The objects as etcd holds them for kube-apiserver, for the simulated etcd snapshot.

        Keys are ``/registry/<group>/<plural>/<namespace>/<name>`` (the core group's and the
        built-in groups' prefixes differ in the real apiserver; nothing reads them back but a
        restore); values are the objects' JSON (the real apiserver stores built-in types as
        protobuf). The creation revision is not tracked: it equals the last modification's.
        """
        keys = []
        for (rt_key, namespace, name), obj in self._objects.items():
            path = "/".join(
                part for part in ("/registry", rt_key.strip("/"), namespace, name) if part
            )
            rv = int(obj["metadata"]["resourceVersion"])
            value = json.dumps(obj, sort_keys=True).encode()
            keys.append(KeyValue(path.encode(), value, create_revision=rv, mod_revision=rv))
        keys.sort(key=lambda kv: kv.mod_revision)
        return keys

    def wipe(self) -> None:
        """etcd lost its data: every object is gone (the revision stays monotonic)."""
        self._objects.clear()
        self.history.clear()
        self.changed.set()

    def restore(self, objects: Iterable[tuple[ResourceType, Obj]]) -> None:
        """etcd was restored from a snapshot: exactly these objects, at their revisions."""
        self._objects.clear()
        self.history.clear()
        for rt, obj in objects:
            meta = obj["metadata"]
            key = (rt.key, meta.get("namespace", "") if rt.namespaced else "", meta["name"])
            self._objects[key] = clone(obj)
            self.rv = max(self.rv, int(meta.get("resourceVersion") or 0))
        self.rv += 1
        self.changed.set()

    def fork(self) -> Store:
        """A private copy for ``dryRun=All`` requests: writes to it reach no one."""
        copy_ = Store(self._clock)
        copy_._epoch = self._epoch
        copy_._objects = {k: clone(v) for k, v in self._objects.items()}
        copy_.rv = self.rv
        return copy_

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._watchers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._watchers.discard(queue)
