"""The Hetzner Cloud provider: the only module that imports ``hcloud``.

``HcloudPort`` is the interface the controller uses; ``HcloudProvider`` implements it on the
official ``hcloud`` 2.27 library with hk8s' own rate limiting, retries, timeouts and batched
action polling; ``FakeHcloud`` (``hk8s.providers.hcloud.fake``) is a stateful in-memory
implementation for unit tests. ``fetch_public_ip`` resolves the firewall source ``current``.

Importing this package is cheap: the library is loaded on first use of ``HcloudProvider``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.providers.hcloud._port import HcloudPort, LabelledKind, ProtectableKind

if TYPE_CHECKING:
    from hk8s.providers.hcloud._actions import ActionWaiter
    from hk8s.providers.hcloud._base import DEFAULT_ENDPOINT, ENDPOINT_ENV, TOKEN_ENV
    from hk8s.providers.hcloud._myip import MY_IP_URL_ENV, fetch_public_ip
    from hk8s.providers.hcloud._provider import HcloudProvider
    from hk8s.providers.hcloud._ratelimit import RateLimiter
    from hk8s.providers.hcloud._transport import PacedAdapter

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "MY_IP_URL_ENV",
    "TOKEN_ENV",
    "ActionWaiter",
    "HcloudPort",
    "HcloudProvider",
    "LabelledKind",
    "PacedAdapter",
    "ProtectableKind",
    "RateLimiter",
    "fetch_public_ip",
]

_LAZY = {
    "ActionWaiter": "hk8s.providers.hcloud._actions",
    "DEFAULT_ENDPOINT": "hk8s.providers.hcloud._base",
    "ENDPOINT_ENV": "hk8s.providers.hcloud._base",
    "TOKEN_ENV": "hk8s.providers.hcloud._base",
    "MY_IP_URL_ENV": "hk8s.providers.hcloud._myip",
    "fetch_public_ip": "hk8s.providers.hcloud._myip",
    "HcloudProvider": "hk8s.providers.hcloud._provider",
    "RateLimiter": "hk8s.providers.hcloud._ratelimit",
    "PacedAdapter": "hk8s.providers.hcloud._transport",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `hk8s --help` never imports hcloud/requests (issue 2, fast start).
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
