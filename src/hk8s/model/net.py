"""Destination-port rewriting for hk8s' outbound connections (``HK8S_PORT_MAP``).

A non-root process cannot bind port 22, so the simulator serves each rescue system's SSH at
``<server-ip>:10022`` and publishes ``HK8S_PORT_MAP=22=10022``. Every hk8s connector (SSH,
Talos, Kubernetes) passes its destination through ``rewrite_port``: a generic facility with no
simulator branches, and a no-op when the variable is unset (real Hetzner).

>>> rewrite_port("127.0.1.5", 22, {"HK8S_PORT_MAP": "22=10022,80=8080"})
('127.0.1.5', 10022)
>>> rewrite_port("127.0.1.5", 50000, {"HK8S_PORT_MAP": "22=10022"})
('127.0.1.5', 50000)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hk8s.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PORT_MAP_ENV", "parse_port_map", "rewrite_port"]

PORT_MAP_ENV = "HK8S_PORT_MAP"


def _port(text: str, raw: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise UsageError(
            f"{PORT_MAP_ENV}={raw!r}: {text.strip()!r} is not a port number (1-65535)",
            hint=f"use the form 22=10022,80=8080, or unset {PORT_MAP_ENV}",
        )
    return value


def parse_port_map(raw: str) -> dict[int, int]:
    """Parse ``22=10022,80=8080`` into ``{22: 10022, 80: 8080}``; empty text is no mapping."""
    mapping: dict[int, int] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        source, sep, target = item.partition("=")
        if not sep:
            raise UsageError(
                f"{PORT_MAP_ENV}={raw!r}: {item.strip()!r} is not of the form PORT=PORT",
                hint=f"use the form 22=10022,80=8080, or unset {PORT_MAP_ENV}",
            )
        mapping[_port(source, raw)] = _port(target, raw)
    return mapping


def rewrite_port(host: str, port: int, environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Where to connect for ``host:port``, after ``HK8S_PORT_MAP`` (read from ``environ``)."""
    env = os.environ if environ is None else environ
    mapping = parse_port_map(env.get(PORT_MAP_ENV, ""))
    return host, mapping.get(port, port)
