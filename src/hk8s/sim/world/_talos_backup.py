"""talos-backup's container (ghcr.io/siderolabs/talos-backup) as the simulated cluster runs it.

What ``/talos-backup`` at v0.1.0-beta.3 does (github.com/siderolabs/talos-backup,
``cmd/talos-backup``, ``pkg/talos``, ``pkg/encryption``, ``pkg/s3``), over the same wire
protocols, so the whole path is exercised and nothing is handed over in memory:

1. read its environment (``pkg/config/service.go``) and the talosconfig Talos' ServiceAccount
   controller mounted at ``/var/run/secrets/talos.dev/config`` (``talosconfig.Open("")``);
2. ``EtcdSnapshot`` over gRPC with mTLS to ``talos.default`` (the Service in front of the
   control planes' apid: the world resolves it to a control plane that answers), as the
   account's certificate allows (os:etcd:backup); check etcd's SHA-256 trailer
   (``size % 512 == 32``); name it ``<cluster>-<RFC 3339 UTC time>.snap``;
3. age-encrypt it to ``AGE_X25519_PUBLIC_KEY`` (``.snap.age``) unless
   ``DISABLE_ENCRYPTION=true``;
4. PUT it to ``<S3_PREFIX or cluster>/<name>`` in ``BUCKET`` at ``CUSTOM_S3_ENDPOINT``, signed
   with SigV4 from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in ``AWS_REGION``;
   path-style only when ``USE_PATH_STYLE`` is ``"false"`` (that release's inverted parse),
   otherwise the bucket is a host name nothing resolves on loopback.

Exit code 255 and the error, as ``log.Println(err); os.Exit(-1)`` leaves them, on failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from grpclib.client import Channel
from grpclib.exceptions import GRPCError

from hk8s.errors import Hk8sError
from hk8s.pki import load_cert_chain, parse_talosconfig
from hk8s.pki.age import AgeError, encrypt
from hk8s.pki.sigv4 import Credentials, sign
from hk8s.talosapi.machine import machine_grpc, machine_pb2

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from hk8s.pki import Talosconfig
    from hk8s.sim.machines import PodRun

__all__ = ["TALOS_BACKUP_REPOSITORY", "TalosBackup"]

TALOS_BACKUP_REPOSITORY = "ghcr.io/siderolabs/talos-backup"
_TALOSCONFIG = "/var/run/secrets/talos.dev/config"
_TALOS_PORT = 50000


class _Failed(Exception):
    pass


def _context(config: Talosconfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # the Go client verifies the chain to the talosconfig CA
    ctx.load_verify_locations(cadata=config.ca_pem.decode())
    ctx.set_alpn_protocols(["h2"])
    load_cert_chain(ctx, config.crt_pem, config.key_pem)
    return ctx


class TalosBackup:
    """The program the world registers for talos-backup's image in each cluster.

    ``resolve(host)`` gives the addresses a name resolves to inside the cluster
    (``talos.default`` -> the control planes); ``now()`` the simulated UTC time.
    """

    def __init__(self, resolve: Callable[[str], list[str]], now: Callable[[], dt.datetime]) -> None:
        self.resolve = resolve
        self.now = now

    async def __call__(self, run: PodRun) -> tuple[int, str]:
        log: list[str] = []
        try:
            await self._backup(run, log)
        except _Failed as exc:
            log.append(str(exc))
            return 255, "".join(f"{line}\n" for line in log)
        return 0, "".join(f"{line}\n" for line in log)

    async def _backup(self, run: PodRun, log: list[str]) -> None:
        env = run.env
        raw = run.files.get(_TALOSCONFIG)
        if raw is None:
            raise _Failed(f"failed to get talosconfig: open {_TALOSCONFIG}: no such file")
        try:
            config = parse_talosconfig(raw.decode())
        except Hk8sError as exc:
            raise _Failed(f"failed to get talosconfig: {exc.message}") from None
        cluster = env.get("CLUSTER_NAME") or config.context
        snapshot = await self._snapshot(config)
        if len(snapshot) % 512 != hashlib.sha256().digest_size:
            raise _Failed(
                f"failed to take etcd snapshot: sha256 checksum not found (size {len(snapshot)})"
            )
        name = f"{cluster}-{self.now().strftime('%Y-%m-%dT%H:%M:%SZ')}.snap"
        log.append(
            f'etcd snapshot for cluster "{cluster}" saved to "{name}" ({len(snapshot)} bytes)'
        )
        data, kind = snapshot, "snapshot"
        if env.get("DISABLE_ENCRYPTION") != "true":
            try:
                data = encrypt(snapshot, [env.get("AGE_X25519_PUBLIC_KEY", "")])
            except AgeError as exc:
                raise _Failed(
                    f"failed to encrypt etcd snapshot: failed to parse public key: {exc}"
                ) from None
            name, kind = name + ".age", "encrypted snapshot"
        prefix = env.get("S3_PREFIX") or cluster
        try:
            await asyncio.to_thread(self._put, env, f"{prefix}/{name}", data)
        except _Failed as exc:
            raise _Failed(f"failed to push {kind}: {exc}") from None

    async def _snapshot(self, config: Talosconfig) -> bytes:
        hosts = [ip for endpoint in config.endpoints for ip in self.resolve(endpoint)]
        if not hosts:
            raise _Failed(
                "failed to take etcd snapshot: error taking snapshot: rpc error: code = "
                f"Unavailable desc = name resolver error: {', '.join(config.endpoints)}"
            )
        ctx = _context(config)
        last = ""
        for host in hosts:
            channel = Channel(host, _TALOS_PORT, ssl=ctx)
            try:
                stub = machine_grpc.MachineServiceStub(channel)
                chunks = []
                async with stub.EtcdSnapshot.open(timeout=300) as stream:
                    await stream.send_message(machine_pb2.EtcdSnapshotRequest(), end=True)
                    async for message in stream:
                        chunks.append(bytes(message.bytes))
                return b"".join(chunks)
            except GRPCError as exc:
                last = f"rpc error: code = {exc.status.name} desc = {exc.message}"
                if exc.status.name == "PERMISSION_DENIED":
                    break
            except (TimeoutError, OSError) as exc:
                last = f"rpc error: code = Unavailable desc = {exc}"
            finally:
                channel.close()
        raise _Failed(f"failed to take etcd snapshot: error taking snapshot: {last}")

    def _put(self, env: dict[str, str], key: str, data: bytes) -> None:
        endpoint = (
            env.get("CUSTOM_S3_ENDPOINT") or f"https://s3.{env.get('AWS_REGION')}.amazonaws.com"
        )
        bucket = env.get("BUCKET", "")
        access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            raise _Failed(
                "operation error S3: PutObject, failed to retrieve credentials: no EC2 IMDS "
                "role found"
            )
        parts = urlsplit(endpoint)
        if env.get("USE_PATH_STYLE") == "false":  # sic: v0.1.0-beta.3's parse
            url = f"{endpoint.rstrip('/')}/{bucket}/{quote(key, safe='/-_.~')}"
        else:
            raise _Failed(
                f'operation error S3: PutObject, https response error: Put "{parts.scheme}://'
                f'{bucket}.{parts.netloc}/{key}": dial tcp: lookup {bucket}.{parts.hostname}: '
                "no such host"
            )
        headers = sign("PUT", url, {"Content-Type": "application/octet-stream"},
                       hashlib.sha256(data).hexdigest(), Credentials(access, secret),
                       region=env.get("AWS_REGION", ""), now=self.now())  # fmt: skip
        request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60):
                return
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            code = body.split("<Code>", 1)[-1].split("</Code>", 1)[0] if "<Code>" in body else ""
            raise _Failed(
                f"operation error S3: PutObject, https response error StatusCode: {exc.code}, "
                f"api error {code}"
            ) from None
        except OSError as exc:
            raise _Failed(f"operation error S3: PutObject, {exc}") from None
