"""Ambient progress notes: what a step waits on, said from deep inside a provider call.

A step of a plan (``create server demo-workers-7``) is reported by the controller, but what it
waits on right then (Hetzner action 4711) is known only inside the Hetzner provider, which
must not know about reporters. The controller runs each step with ``noting(callback)``; the
provider calls ``note("Hetzner action 4711 (create_server)")``; outside a step nothing happens.
A ``ContextVar`` keeps concurrent steps apart: each asyncio task sees its own callback.

>>> seen = []
>>> with noting(seen.append):
...     note("Hetzner action 4711 (create_server)")
>>> note("outside any step: dropped")
>>> seen
['Hetzner action 4711 (create_server)']
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["note", "noting"]

_CALLBACK: ContextVar[Callable[[str], None] | None] = ContextVar("hk8s_note", default=None)


def note(detail: str) -> None:
    """Tell the step running in this task what it waits on now (no-op outside a step)."""
    callback = _CALLBACK.get()
    if callback is not None:
        callback(detail)


@contextlib.contextmanager
def noting(callback: Callable[[str], None]) -> Iterator[None]:
    """Run the block with ``callback`` receiving its ``note``s."""
    token = _CALLBACK.set(callback)
    try:
        yield
    finally:
        _CALLBACK.reset(token)
