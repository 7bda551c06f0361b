"""The Hetzner Cloud provider: the only module that imports ``hcloud``.

``HcloudPort`` is the interface the controller uses; ``HcloudProvider`` implements it on the
official ``hcloud`` 2.27 library with hk8s' own rate limiting, retries, timeouts and batched
action polling; ``FakeHcloud`` (in ``hk8s.providers.hcloud.fake``) is a stateful in-memory
implementation for unit tests.
"""

from __future__ import annotations

from hk8s.providers.hcloud._port import HcloudPort, LabelledKind

__all__ = ["HcloudPort", "LabelledKind"]
