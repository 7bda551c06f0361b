"""What this run has changed so far: counted where changes are made, read where errors are told.

Exit code 2 promises "bad input, nothing was changed". Some bad input can only be found after
changes were made (a machine config the node refuses after its server was created). The CLI
therefore asks this ledger before making that promise: each provider records every change it
makes (a Hetzner POST/PUT/DELETE that was not refused, a mutating Talos RPC, a Kubernetes write,
a local file written), and the error report says how many there were instead of claiming none.

The ledger is per process (one hk8s command per process); ``reset()`` starts a run.

>>> reset(); record("hetzner"); made()
1
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["describe", "made", "record", "reset"]

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def record(kind: str, count: int = 1) -> None:
    """Count ``count`` changes of ``kind`` ("hetzner", "talos", "kubernetes", "local file")."""
    with _lock:
        _counts[kind] += count


def made() -> int:
    """How many changes this run has made so far."""
    with _lock:
        return sum(_counts.values())


def describe() -> str:
    """``"3 Hetzner API change(s), 1 local file"`` (empty when nothing changed)."""
    names = {
        "hetzner": "Hetzner API change(s)",
        "talos": "Talos API call(s)",
        "kubernetes": "Kubernetes write(s)",
        "local file": "local file(s) written",
    }
    with _lock:
        return ", ".join(f"{n} {names.get(k, k)}" for k, n in sorted(_counts.items()) if n)


def reset() -> None:
    with _lock:
        _counts.clear()
