"""A real grpclib Talos server on 127.x.y.z:50000 for the client tests, and its PKI.

The PKI is built here with ``cryptography`` directly (not ``hk8s.pki``), shaped like Talos':
an Ed25519 OS CA, an Ed25519 server certificate with IP SANs (what apid serves), admin client
certificates with ``O=os:admin``. ``FakeTalos`` answers like apid + machined would, including
the one-to-many shape: with ``nodes`` metadata every node gets a message carrying its hostname,
and a node listed in ``down`` gets only ``metadata.error``/``status``, as apid reports it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import itertools
import socket
import ssl
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server

from hk8s.talosapi.cluster import cluster_grpc, cluster_pb2
from hk8s.talosapi.common import common_pb2
from hk8s.talosapi.cosi import resource_pb2, state_grpc, state_pb2
from hk8s.talosapi.google.rpc import status_pb2
from hk8s.talosapi.machine import machine_grpc, machine_pb2
from hk8s.talosapi.storage import storage_grpc, storage_pb2

if TYPE_CHECKING:
    from pathlib import Path

NOW = dt.datetime.now(dt.UTC)
_addresses = itertools.count(1)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

    @property
    def crt_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, label: str = "PRIVATE KEY") -> bytes:
        """The key as PEM under ``label``: ``ED25519 PRIVATE KEY`` is how Talos writes PKCS#8
        DER of an Ed25519 key, ``EC PRIVATE KEY`` is SEC1, ``PRIVATE KEY`` plain PKCS#8."""
        sec1 = label == "EC PRIVATE KEY"
        fmt = (
            serialization.PrivateFormat.TraditionalOpenSSL
            if sec1
            else serialization.PrivateFormat.PKCS8
        )
        pem = self.key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        if label == "ED25519 PRIVATE KEY":
            pem = pem.replace(b" PRIVATE KEY-----", b" ED25519 PRIVATE KEY-----")
        return pem


def _sign(
    builder: x509.CertificateBuilder, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def make_ca(cn: str = "talos") -> Issued:
    key = ed25519.Ed25519PrivateKey.generate()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, "talos"))
        .issuer_name(_name(cn, "talos"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return Issued(_sign(builder, key), key)


def issue(
    ca: Issued,
    *,
    server: bool,
    ecdsa: bool = False,
    ips: tuple[str, ...] = (),
) -> Issued:
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if ecdsa else ed25519.Ed25519PrivateKey.generate()
    )
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("apid" if server else "admin", None if server else "os:admin"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if ips:
        import ipaddress

        sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(_sign(builder, ca.key), key)


# -- the fake node ------------------------------------------------------------------------

MAINTENANCE_CALLS = {"ApplyConfiguration", "Version", "Disks"}
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n"


def tar_gz(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class FakeTalos:
    """One node behind apid. Tests flip the attributes to script its behaviour."""

    maintenance: bool = False
    down: set[str] = field(default_factory=set)  # nodes apid cannot reach
    silent: set[str] = field(default_factory=set)  # nodes whose reply goes missing
    hang: bool = False  # never answer (timeouts)
    bootstrapped: bool = False
    snapshot: bytes = bytes(range(256)) * 40
    snapshot_fail_after: int | None = None  # chunks sent before the stream breaks
    calls: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    recovered: bytearray = field(default_factory=bytearray)

    async def enter(self, name: str, stream: Any, request: Any) -> list[str]:
        """Record the call; the nodes it fans out to (apid's ``nodes`` metadata)."""
        nodes = list(stream.metadata.getall("nodes", []))
        self.calls.append((name, nodes, list(stream.metadata.getall("node", []))))
        self.requests.append(request)
        if self.hang:
            await asyncio.Event().wait()
        if self.maintenance and name not in MAINTENANCE_CALLS:
            # Talos answers this for calls it does not serve in maintenance mode.
            raise GRPCError(Status.UNIMPLEMENTED, "API is not implemented in maintenance mode")
        return nodes

    async def unary(self, name: str, stream: Any, reply: Any, build: Callable[[Any], Any]) -> None:
        request = await stream.recv_message()
        nodes = await self.enter(name, stream, request)
        messages = []
        for node in nodes or [""]:
            if node in self.silent:
                continue
            if node in self.down:
                error = f"rpc error: code = Unavailable desc = connection refused to {node}"
                meta = common_pb2.Metadata(
                    hostname=node, error=error, status=status_pb2.Status(code=14, message=error)
                )
                messages.append(type(build(request))(metadata=meta))
                continue
            message = build(request)
            if node:
                message.metadata.hostname = node
            messages.append(message)
        await stream.send_message(reply(messages=messages))

    async def chunks(self, name: str, stream: Any, data: bytes, size: int = 7) -> None:
        request = await stream.recv_message()
        await self.enter(name, stream, request)
        for n, start in enumerate(range(0, len(data), size)):
            if self.snapshot_fail_after is not None and n == self.snapshot_fail_after:
                raise GRPCError(Status.INTERNAL, "etcd snapshot failed")
            await stream.send_message(common_pb2.Data(bytes=data[start : start + size]))


def _event(payload: Any, event_id: str) -> machine_pb2.Event:
    event = machine_pb2.Event(id=event_id, actor_id="actor-1")
    event.data.Pack(payload, type_url_prefix="talos/runtime")
    return event


class FakeMachine(machine_grpc.MachineServiceBase):
    def __init__(self, fake: FakeTalos) -> None:
        self.f = fake

    async def ApplyConfiguration(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            mode = machine_pb2.ApplyConfigurationRequest.REBOOT if self.f.maintenance else r.mode
            return machine_pb2.ApplyConfiguration(mode=mode, mode_details="applied", warnings=["w"])

        await self.f.unary(
            "ApplyConfiguration", stream, machine_pb2.ApplyConfigurationResponse, build
        )

    async def Bootstrap(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("Bootstrap", stream, request)
        if self.f.bootstrapped:
            # talos v1alpha1_server.go: the answer on a node that bootstrapped before.
            raise GRPCError(Status.ALREADY_EXISTS, "etcd data directory is not empty")
        self.f.bootstrapped = True
        await stream.send_message(machine_pb2.BootstrapResponse(messages=[machine_pb2.Bootstrap()]))

    async def Version(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            return machine_pb2.Version(
                version=machine_pb2.VersionInfo(tag="v1.11.5", arch="amd64", os="linux"),
                platform=machine_pb2.PlatformInfo(name="hcloud", mode="cloud"),
                features=machine_pb2.FeaturesInfo(rbac=True),
            )

        await self.f.unary("Version", stream, machine_pb2.VersionResponse, build)

    async def Upgrade(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            return machine_pb2.Upgrade(ack=f"Upgrade request received: {r.image}", actor_id="a")

        await self.f.unary("Upgrade", stream, machine_pb2.UpgradeResponse, build)

    async def Reboot(self, stream: Any) -> None:
        build = lambda r: machine_pb2.Reboot(actor_id=f"reboot-{r.mode}")  # noqa: E731
        await self.f.unary("Reboot", stream, machine_pb2.RebootResponse, build)

    async def Reset(self, stream: Any) -> None:
        build = lambda r: machine_pb2.Reset(actor_id="reset")  # noqa: E731
        await self.f.unary("Reset", stream, machine_pb2.ResetResponse, build)

    async def Shutdown(self, stream: Any) -> None:
        build = lambda r: machine_pb2.Shutdown(actor_id="shutdown")  # noqa: E731
        await self.f.unary("Shutdown", stream, machine_pb2.ShutdownResponse, build)

    async def ServiceList(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            return machine_pb2.ServiceList(
                services=[
                    machine_pb2.ServiceInfo(
                        id="etcd", state="Running", health=machine_pb2.ServiceHealth(healthy=True)
                    ),
                    machine_pb2.ServiceInfo(
                        id="kubelet",
                        state="Preparing",
                        health=machine_pb2.ServiceHealth(unknown=True, last_message="waiting"),
                    ),
                ]
            )

        await self.f.unary("ServiceList", stream, machine_pb2.ServiceListResponse, build)

    async def ServiceRestart(self, stream: Any) -> None:
        build = lambda r: machine_pb2.ServiceRestart(resp=f"Service {r.id!r} restarted")  # noqa: E731
        await self.f.unary("ServiceRestart", stream, machine_pb2.ServiceRestartResponse, build)

    async def EtcdMemberList(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            member = machine_pb2.EtcdMember(
                id=0xABC, hostname="demo-cp-1", peer_urls=["https://10.0.1.2:2380"]
            )
            return machine_pb2.EtcdMembers(members=[member])

        await self.f.unary("EtcdMemberList", stream, machine_pb2.EtcdMemberListResponse, build)

    async def EtcdRemoveMemberByID(self, stream: Any) -> None:
        build = lambda r: machine_pb2.EtcdRemoveMemberByID()  # noqa: E731
        reply = machine_pb2.EtcdRemoveMemberByIDResponse
        await self.f.unary("EtcdRemoveMemberByID", stream, reply, build)

    async def EtcdLeaveCluster(self, stream: Any) -> None:
        build = lambda r: machine_pb2.EtcdLeaveCluster()  # noqa: E731
        await self.f.unary("EtcdLeaveCluster", stream, machine_pb2.EtcdLeaveClusterResponse, build)

    async def EtcdForfeitLeadership(self, stream: Any) -> None:
        build = lambda r: machine_pb2.EtcdForfeitLeadership(member="demo-cp-1")  # noqa: E731
        reply = machine_pb2.EtcdForfeitLeadershipResponse
        await self.f.unary("EtcdForfeitLeadership", stream, reply, build)

    async def EtcdStatus(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            status = machine_pb2.EtcdMemberStatus(member_id=7, leader=7, db_size=4096)
            return machine_pb2.EtcdStatus(member_status=status)

        await self.f.unary("EtcdStatus", stream, machine_pb2.EtcdStatusResponse, build)

    async def Kubeconfig(self, stream: Any) -> None:
        await self.f.chunks("Kubeconfig", stream, tar_gz("kubeconfig", KUBECONFIG.encode()))

    async def EtcdSnapshot(self, stream: Any) -> None:
        await self.f.chunks("EtcdSnapshot", stream, self.f.snapshot, size=1000)

    async def Read(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("Read", stream, request)
        await stream.send_message(common_pb2.Data(bytes=f"contents of {request.path}".encode()))

    async def Logs(self, stream: Any) -> None:
        await self.f.chunks("Logs", stream, b"line 1\nline 2\n", size=7)

    async def Dmesg(self, stream: Any) -> None:
        await self.f.chunks("Dmesg", stream, b"[0.0] booting\n", size=100)

    async def Events(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("Events", stream, request)
        phase = machine_pb2.PhaseEvent(phase="install", action=machine_pb2.PhaseEvent.STOP)
        await stream.send_message(_event(phase, "1"))
        status = machine_pb2.MachineStatusEvent(stage=machine_pb2.MachineStatusEvent.RUNNING)
        await stream.send_message(_event(status, "2"))
        await asyncio.Event().wait()  # Talos' event stream stays open

    async def EtcdRecover(self, stream: Any) -> None:
        async for chunk in stream:
            self.f.recovered += chunk.bytes
        await self.f.enter("EtcdRecover", stream, None)
        await stream.send_message(
            machine_pb2.EtcdRecoverResponse(messages=[machine_pb2.EtcdRecover()])
        )


class FakeStorage(storage_grpc.StorageServiceBase):
    def __init__(self, fake: FakeTalos) -> None:
        self.f = fake

    async def Disks(self, stream: Any) -> None:
        def build(r: Any) -> Any:
            disk = storage_pb2.Disk(
                device_name="sda", size=40 << 30, type=storage_pb2.Disk.SSD, system_disk=True
            )
            return storage_pb2.Disks(disks=[disk])

        await self.f.unary("Disks", stream, storage_pb2.DisksResponse, build)


class FakeCluster(cluster_grpc.ClusterServiceBase):
    def __init__(self, fake: FakeTalos) -> None:
        self.f = fake

    async def HealthCheck(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("HealthCheck", stream, request)
        for text in ("waiting for etcd to be healthy: OK", "all checks passed"):
            await stream.send_message(cluster_pb2.HealthCheckProgress(message=text))


def _resource(rid: str, version: str, stage: str) -> resource_pb2.Resource:
    meta = resource_pb2.Metadata(
        namespace="runtime", type="MachineStatuses.runtime.talos.dev", id=rid, version=version
    )
    meta.labels["talos.dev/stage"] = stage
    spec = resource_pb2.Spec(yaml_spec=f"stage: {stage}\nstatus:\n  ready: true\n")
    return resource_pb2.Resource(metadata=meta, spec=spec)


class FakeState(state_grpc.StateBase):
    def __init__(self, fake: FakeTalos) -> None:
        self.f = fake

    async def Get(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("State.Get", stream, request)
        if request.id != "machine":
            raise GRPCError(Status.NOT_FOUND, f"resource {request.id} doesn't exist")
        await stream.send_message(
            state_pb2.GetResponse(resource=_resource("machine", "3", "running"))
        )

    async def List(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("State.List", stream, request)
        for rid in ("a", "b"):
            await stream.send_message(
                state_pb2.ListResponse(resource=_resource(rid, "1", "running"))
            )

    async def Watch(self, stream: Any) -> None:
        request = await stream.recv_message()
        await self.f.enter("State.Watch", stream, request)
        created = state_pb2.Event(
            event_type=state_pb2.CREATED, resource=_resource("machine", "1", "booting")
        )
        await stream.send_message(state_pb2.WatchResponse(event=[created]))
        await stream.send_message(
            state_pb2.WatchResponse(event=[state_pb2.Event(event_type=state_pb2.BOOTSTRAPPED)])
        )
        updated = state_pb2.Event(
            event_type=state_pb2.UPDATED,
            resource=_resource("machine", "2", "running"),
            old=_resource("machine", "1", "booting"),
        )
        await stream.send_message(state_pb2.WatchResponse(event=[updated]))
        await asyncio.Event().wait()


def services(fake: FakeTalos) -> list[Any]:
    return [FakeMachine(fake), FakeStorage(fake), FakeCluster(fake), FakeState(fake)]


@dataclass
class Pki:
    ca: Issued
    server: Issued
    client: Issued
    client_ecdsa: Issued
    rogue_ca: Issued
    rogue_client: Issued
    rogue_server: Issued


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca, rogue = make_ca(), make_ca("rogue")
    return Pki(
        ca=ca,
        server=issue(ca, server=True, ips=("127.0.0.1",)),
        client=issue(ca, server=False),
        client_ecdsa=issue(ca, server=False, ecdsa=True),
        rogue_ca=rogue,
        rogue_client=issue(rogue, server=False),
        rogue_server=issue(rogue, server=True),
    )


def server_context(tmp: Path, cert: Issued, *, client_ca: Issued | None) -> ssl.SSLContext:
    """What apid serves: TLS with an Ed25519 cert; client certs required in mTLS mode only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    crt, key = tmp / f"server-{id(cert)}.crt", tmp / f"server-{id(cert)}.key"
    crt.write_bytes(cert.crt_pem)
    key.write_bytes(cert.key_pem())
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["h2"])
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.crt_pem.decode())
    return ctx


def free_address() -> str:
    """A 127.x.y.z on which port 50000 (Talos' apid port) is free."""
    while True:
        n = next(_addresses)
        ip = f"127.77.{(n // 250) % 250}.{n % 250 + 1}"
        with socket.socket() as probe:
            try:
                probe.bind((ip, 50000))
            except OSError:
                continue
        return ip


@pytest.fixture
def free_ip() -> str:
    """An address where no Talos node listens (yet)."""
    return free_address()


@dataclass
class Running:
    ip: str
    fake: FakeTalos
    server: Server


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture
async def talos_server(tmp_path: Path, pki: Pki) -> AsyncIterator[StartServer]:
    """Start a fake Talos node: ``await talos_server(mtls=True)``."""
    started: list[Server] = []

    async def start(
        *,
        mtls: bool,
        fake: FakeTalos | None = None,
        ip: str | None = None,
        port: int = 50000,
        cert: Any = None,
        client_ca: Any = None,
    ) -> Running:
        """``cert``/``client_ca``: an ``Issued`` or anything with ``.cert`` and ``.key``
        (e.g. ``hk8s.pki.CertAndKey``)."""
        cert = cert if cert is None or isinstance(cert, Issued) else Issued(cert.cert, cert.key)
        if client_ca is not None and not isinstance(client_ca, Issued):
            client_ca = Issued(client_ca.cert, client_ca.key)
        fake = fake or FakeTalos(maintenance=not mtls)
        ip = ip or free_address()
        trusted = (client_ca or pki.ca) if mtls else None
        ctx = server_context(tmp_path, cert or pki.server, client_ca=trusted)
        server = Server(services(fake))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        await server.start(sock=sock, ssl=ctx)
        started.append(server)
        return Running(ip, fake, server)

    yield start
    for server in started:
        server.close()
        await server.wait_closed()
