"""A stateful in-memory ``HcloudPort`` for unit tests of the controller.

Keeps resources in dicts, filters by real label-selector semantics (``hk8s.model.labels``),
enforces name uniqueness (``ConflictError`` with ``code="uniqueness_error"``), answers
``NotFoundError`` for unknown ids, and records every call in ``calls`` so tests can count
mutations. ``fail(method, error, times=1)`` makes the next call(s) of a method raise, before
(``after=False``) or after (``after=True``, the request "succeeded" but the answer was lost)
the change is made. Deleting a resource whose ``protected`` is set raises ``ConflictError``
with ``code="protected"``, as the API answers. After CAPH's ``pkg/services/hcloud/client/fake``.

It is not the simulator: no HTTP, no actions in flight, no rate limit. End-to-end behaviour is
tested against ``hk8s.sim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.providers.hcloud.fake._compute import ComputeCalls
from hk8s.providers.hcloud.fake._core import MUTATING_PREFIXES
from hk8s.providers.hcloud.fake._network import NetworkCalls

if TYPE_CHECKING:
    from hk8s.providers.hcloud._port import HcloudPort

__all__ = ["MUTATING_PREFIXES", "FakeHcloud"]


@dataclass
class FakeHcloud(NetworkCalls, ComputeCalls):
    """In-memory Hetzner project. Inspect ``networks``, ``firewalls``, ... directly."""


if TYPE_CHECKING:
    # mypy proves the fake implements the whole port.
    def _implements_port(fake: FakeHcloud) -> HcloudPort:
        return fake
