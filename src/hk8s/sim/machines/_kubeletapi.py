"""A node's kubelet API: the HTTPS endpoint kube-apiserver proxies ``kubectl logs`` to.

kube-apiserver reaches a kubelet at the node address ``--kubelet-preferred-address-types``
picks (the world starts it with ExternalIP first: the loopback address the simulated node
serves on) and ``status.daemonEndpoints.kubeletEndpoint.Port`` (10250), presenting its
``apiserver-kubelet-client`` certificate; ``GET /containerLogs/<ns>/<pod>/<container>`` answers
the container's log (``tailLines`` honoured), as kubelet's ``server.go`` does.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hk8s.pki import issue_certificate, to_pkcs8_pem
from hk8s.sim._http import HTTPServer, Response

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.pki import CertAndKey
    from hk8s.sim._http import Request

__all__ = ["KUBELET_PORT", "KubeletServer"]

KUBELET_PORT = 10250


def _context(ca: CertAndKey, ip: str, name: str) -> ssl.SSLContext:
    # Talos' kubelet serves a certificate for the node's addresses (serverTLSBootstrap off:
    # self-issued); kube-apiserver does not verify it without --kubelet-certificate-authority.
    cert = issue_certificate(
        ca,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        validity=dt.timedelta(days=365),
        common_name=name,
        ip_addresses=[ip],
        dns_names=[name],
        server_auth=True,
        key_encipherment=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        crt, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        crt.write_bytes(cert.cert_pem)
        key.write_bytes(to_pkcs8_pem(cert.key_pem))
        context.load_cert_chain(crt, key)
    return context


class KubeletServer:
    """The kubelet API of one node; ``logs(ns, pod, container)`` is the log text or None."""

    def __init__(
        self, ca: CertAndKey, ip: str, name: str, logs: Callable[[str, str, str], str | None]
    ) -> None:
        self.ip, self.name, self._logs = ip, name, logs
        self._server = HTTPServer(self._handle, ssl_context=_context(ca, ip, name))
        self.serving = False

    async def start(self) -> None:
        try:
            await self._server.start(self.ip, KUBELET_PORT)
        except OSError:
            return  # the address is not ours (yet): kubectl logs answers a dial error
        self.serving = True

    async def close(self) -> None:
        if self.serving:
            self.serving = False
            await self._server.close()

    async def _handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if request.path in ("/healthz", "/livez"):
            return Response.text("ok")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return Response.text("404 page not found\n", 404)
        _, ns, pod, container = parts
        text = self._logs(ns, pod, container)
        if text is None:
            return Response.text(
                f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating',
                400,
            )
        tail = request.param("tailLines")
        if tail is not None and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail) :]) if int(tail) else ""
        return Response.text(text)
