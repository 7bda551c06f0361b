"""The schematic a config's image is built from: the configured id, or the factory's id for
the configured extensions.

The Image Factory names a schematic by the SHA-256 of its canonical YAML
(siderolabs/image-factory ``pkg/schematic/schematic.go``), and ``POST /schematics`` is
idempotent: the same customization always returns the same id. So the answer is cached by
content: per ``SchematicResolver`` in memory, and across runs in a small JSON file
(``$XDG_CACHE_HOME/hk8s/schematics.json`` or ``~/.cache/hk8s/...``) when ``cache_file`` is
given. A stale or corrupt cache file is ignored and rewritten, never an error.

>>> resolver = SchematicResolver(cache_file=default_cache_file())
>>> # await resolver.resolve(config.talos)  -> "376567988ad3..."
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hk8s.errors import PermanentError, UnavailableError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.config import TalosConfig

__all__ = [
    "FactoryClient",
    "HttpFactoryClient",
    "SchematicResolver",
    "default_cache_file",
    "schematic_request",
]

_ID = re.compile(r"^[0-9a-f]{64}$")


class FactoryClient(Protocol):
    """``POST <factory>/schematics`` with a JSON schematic; returns the id."""

    async def create_schematic(self, factory: str, body: bytes) -> str: ...


def schematic_request(extensions: Sequence[str]) -> bytes:
    """The schematic body for ``extensions`` (``customization.systemExtensions``).

    The factory accepts YAML or JSON; JSON keeps the cache key independent of YAML styling.
    """
    doc = {"customization": {"systemExtensions": {"officialExtensions": list(extensions)}}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class HttpFactoryClient:
    """The Image Factory over HTTP(S) (stdlib ``urllib`` in a worker thread)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._timeout = max(2.0, timeout)

    async def create_schematic(self, factory: str, body: bytes) -> str:
        return await asyncio.to_thread(self._post, factory.rstrip("/") + "/schematics", body)

    def _post(self, url: str, body: bytes) -> str:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                payload = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()[:300]
            if 400 <= exc.code < 500:
                raise PermanentError(
                    f"the Image Factory refused the schematic (HTTP {exc.code}): {detail}",
                    hint="check talos.extensions in cluster.yaml (names like siderolabs/...)",
                    url=url,
                ) from exc
            raise UnavailableError(f"the Image Factory answered HTTP {exc.code}", url=url) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UnavailableError(
                f"the Image Factory at {url} is not reachable: {exc}",
                hint="check talos.image_factory in cluster.yaml and the network",
                url=url,
            ) from exc
        sid = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not _ID.match(sid):
            raise PermanentError(f"the Image Factory returned no schematic id: {payload!r}")
        return sid


def default_cache_file(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/hk8s/schematics.json`` (``~/.cache`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hk8s" / "schematics.json"


class SchematicResolver:
    """Turns ``talos`` config into a schematic id, asking the factory at most once per content."""

    def __init__(self, client: FactoryClient | None = None, cache_file: Path | None = None):
        self._client = client or HttpFactoryClient()
        self._cache_file = cache_file
        self._memory: dict[str, str] = {}
        self.requests = 0

    async def resolve(self, talos: TalosConfig) -> str:
        """The configured schematic, or the factory's id for the configured extensions."""
        configured = talos.effective_schematic
        if configured is not None:
            return configured
        if not talos.extensions:
            raise UsageError("talos: neither schematic nor extensions is set")
        return await self.for_extensions(talos.image_factory, talos.extensions)

    async def for_extensions(self, factory: str, extensions: Sequence[str]) -> str:
        body = schematic_request(extensions)
        key = hashlib.sha256(factory.rstrip("/").encode() + b"\n" + body).hexdigest()
        if key in self._memory:
            return self._memory[key]
        cached = self._load().get(key)
        if cached is not None and _ID.match(cached):
            self._memory[key] = cached
            return cached
        self.requests += 1
        sid = await self._client.create_schematic(factory, body)
        self._memory[key] = sid
        self._store(key, sid)
        return sid

    def _load(self) -> dict[str, str]:
        if self._cache_file is None:
            return {}
        try:
            data = json.loads(self._cache_file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _store(self, key: str, sid: str) -> None:
        if self._cache_file is None:
            return
        data = self._load()
        data[key] = sid
        # A cache is an optimisation: a read-only home must not fail the build.
        with contextlib.suppress(OSError):
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self._cache_file)
