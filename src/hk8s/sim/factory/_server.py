"""The simulated Image Factory (factory.talos.dev) over HTTP.

Routes follow siderolabs/image-factory ``internal/frontend/http/http.go``:

- ``POST /schematics`` (YAML or JSON body) -> ``201 {"id": ..., "schematic": ...}``
- ``GET /schematics/<id>`` -> the canonical YAML, 404 when unknown
- ``GET|HEAD /image/<schematic>/<version>/hcloud-<arch>.raw.xz`` -> the image, 404 when the
  schematic, version or architecture is unknown
- ``GET /versions`` -> the Talos versions the factory knows

``ImageFactory.handle`` is a plain ``hk8s.sim._http`` handler, so the factory runs on its own
port (``start``) or under a path prefix of another server (``mount_prefix``).

>>> factory = ImageFactory()
>>> # await factory.start("127.0.0.1", 0); factory.url -> "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from hk8s.sim._http import HTTPServer, Request, Response
from hk8s.sim.factory._images import ARCHITECTURES, TalosImage, build_image
from hk8s.sim.factory._schematic import (
    DEFAULT_SCHEMATIC_ID,
    Schematic,
    SchematicError,
    parse_schematic,
    schematic_id,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DEFAULT_VERSIONS", "ImageFactory"]

# Releases the simulated factory serves: every patch of the Talos minors hk8s supports.
DEFAULT_VERSIONS: tuple[str, ...] = tuple(
    f"v1.{minor}.{patch}" for minor in range(9, 15) for patch in range(13)
)
_IMAGE_PATH = re.compile(r"^/image/([^/]+)/([^/]+)/([^/]+)$")
_HCLOUD_FILE = re.compile(r"^hcloud-([a-z0-9]+)\.raw\.xz$")


class ImageFactory:
    """Schematics and ``hcloud`` disk images for the simulated world."""

    def __init__(self, versions: Iterable[str] = DEFAULT_VERSIONS, mount_prefix: str = "") -> None:
        self.versions = set(versions)
        self.mount_prefix = mount_prefix.rstrip("/")
        self.schematics: dict[str, Schematic] = {DEFAULT_SCHEMATIC_ID: Schematic()}
        self.downloads: list[TalosImage] = []
        self._server: HTTPServer | None = None

    def add_schematic(self, schematic: Schematic) -> str:
        sid = schematic_id(schematic)
        self.schematics[sid] = schematic
        return sid

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> ImageFactory:
        self._server = await HTTPServer(self.handle).start(host, port)
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the image factory is not started")
        return self._server.url + self.mount_prefix

    async def handle(self, request: Request) -> Response:
        path = request.path
        if self.mount_prefix:
            if not path.startswith(self.mount_prefix + "/"):
                return _not_found("not found")
            path = path[len(self.mount_prefix) :]
        if path == "/schematics" and request.method == "POST":
            return self._create_schematic(request.body)
        if request.method not in {"GET", "HEAD"}:
            return Response.text("method not allowed\n", status=405)
        if path.startswith("/schematics/"):
            schematic = self.schematics.get(path.removeprefix("/schematics/"))
            if schematic is None:
                return _not_found("schematic not found")
            return Response.text(schematic.canonical(), content_type="application/yaml")
        if path == "/versions":
            return Response.json(sorted(self.versions, key=_version_key))
        if match := _IMAGE_PATH.match(path):
            response = self._image(*match.groups())
            if request.method == "HEAD":
                response.headers["Content-Length"] = str(len(response.body))
                response.body = b""
            return response
        return _not_found("not found")

    def _create_schematic(self, body: bytes) -> Response:
        try:
            schematic = parse_schematic(body)
        except SchematicError as exc:
            return Response.text(f"{exc}\n", status=400)
        sid = self.add_schematic(schematic)
        return Response.json({"id": sid, "schematic": schematic.canonical()}, status=201)

    def _image(self, schematic: str, version: str, filename: str) -> Response:
        if schematic not in self.schematics:
            return _not_found(f"schematic ID {schematic!r} not found")
        if version not in self.versions:
            return _not_found(f"version {version!r} not found")
        match = _HCLOUD_FILE.match(filename)
        if match is None or match.group(1) not in ARCHITECTURES:
            return _not_found(f"image {filename!r} not found")
        image = TalosImage(version, match.group(1), schematic)
        self.downloads.append(image)
        data = build_image(image)
        return Response(
            status=200,
            body=data,
            headers={
                "Content-Type": "application/x-xz",
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _not_found(message: str) -> Response:
    return Response(status=404, body=json.dumps({"error": message}).encode() + b"\n")
