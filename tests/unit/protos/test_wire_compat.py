"""Our protos are wire-compatible with Talos: same packages, field numbers, types, enums, RPCs.

The protos are compiled afresh here (protoc -> FileDescriptorSet), so the check is about
``protos/``, not about whatever was generated last; ``tools/protos.py check`` covers the rest.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import grpc_tools  # type: ignore[import-untyped]
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as Field

import _reference

ROOT = Path(__file__).resolve().parents[3]
PROTOS = ROOT / "protos"
# Copies of ../shared/reference/talos/rpcs-*.tsv (every RPC of those Talos versions).
RPC_TABLES = _reference.REFERENCE / "talos"


def _type_of(field: Field) -> str:
    if field.type in (Field.TYPE_MESSAGE, Field.TYPE_ENUM):
        text = field.type_name.lstrip(".")
    else:
        text = Field.Type.Name(field.type).removeprefix("TYPE_").lower()
    if field.label == Field.LABEL_REPEATED:
        return "repeated " + text
    if field.proto3_optional:
        return "optional " + text
    return text


class Compiled:
    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.files = [f for f in fds.file if not f.package.startswith("google.protobuf")]
        self.messages: dict[str, dict[str, tuple[int, str]]] = {}
        self.enums: dict[str, dict[str, int]] = {}
        self.rpcs: dict[str, tuple[str, str, str]] = {}
        for fd in self.files:
            for message in fd.message_type:
                self._walk(fd.package, message)
            for enum in fd.enum_type:
                self.enums[f"{fd.package}.{enum.name}"] = {v.name: v.number for v in enum.value}
            for service in fd.service:
                for m in service.method:
                    kind = {
                        (False, False): "unary",
                        (False, True): "server-stream",
                        (True, False): "client-stream",
                        (True, True): "bidi",
                    }[(m.client_streaming, m.server_streaming)]
                    self.rpcs[f"{fd.package}.{service.name}/{m.name}"] = (
                        m.input_type.lstrip("."),
                        m.output_type.lstrip("."),
                        kind,
                    )

    def _walk(self, prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = {f.name: (f.number, _type_of(f)) for f in message.field}
        for nested in message.nested_type:
            self._walk(name, nested)
        for enum in message.enum_type:
            self.enums[f"{name}.{enum.name}"] = {v.name: v.number for v in enum.value}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    out = tmp_path_factory.mktemp("fds") / "talos.pb"
    protos = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *protos,
        ],
        check=True,
    )
    return Compiled(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()))


def test_packages_are_upstreams(compiled: Compiled) -> None:
    packages = {f.package for f in compiled.files}
    assert packages == {"common", "machine", "storage", "cluster", "cosi.resource", "google.rpc"}
    # File paths are ours (hk8s/talosapi/...), so nothing shadows the stdlib.
    assert all(f.name.startswith("hk8s/talosapi/") for f in compiled.files)


def test_every_message_matches_upstream(
    compiled: Compiled, upstream_messages: dict[str, dict[str, tuple[int, str]]]
) -> None:
    assert sorted(compiled.messages) == sorted(upstream_messages)
    for name, fields in compiled.messages.items():
        assert fields == upstream_messages[name], name


def test_every_enum_matches_upstream(
    compiled: Compiled, upstream_enums: dict[str, dict[str, int]]
) -> None:
    assert compiled.enums == upstream_enums


def _rpc_table(path: Path) -> dict[str, tuple[str, str, str]]:
    table: dict[str, tuple[str, str, str]] = {}
    service = ""
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            service = line.split()[1]
        elif line and not line.startswith(("ERR", "#")):
            method, request, response, kind = line.split("\t")
            table[f"{service}/{method}"] = (request, response, kind.split()[0])
    return table


@pytest.mark.parametrize("version", ["v1.11", "v1.14"])
def test_every_rpc_is_in_the_upstream_table(compiled: Compiled, version: str) -> None:
    table = _rpc_table(RPC_TABLES / f"rpcs-{version}.tsv")
    assert len(compiled.rpcs) == 26  # 21 machine, Disks, HealthCheck, 3 State
    for path, signature in compiled.rpcs.items():
        assert path in table, path
        assert signature == table[path], path


def _mapping(base: type) -> dict[str, object]:
    """The path -> handler table of a server base with every method filled in."""

    async def handler(self: object, stream: object) -> None:
        return None

    names = base.__abstractmethods__  # type: ignore[attr-defined]
    concrete = type("Concrete", (base,), dict.fromkeys(names, handler))
    return concrete().__mapping__()  # type: ignore[no-any-return]


def test_generated_modules_serve_the_upstream_paths() -> None:
    machine_grpc = importlib.import_module("hk8s.talosapi.machine.machine_grpc")
    state_grpc = importlib.import_module("hk8s.talosapi.cosi.state_grpc")
    machine = _mapping(machine_grpc.MachineServiceBase)
    assert "/machine.MachineService/ApplyConfiguration" in machine
    assert "/machine.MachineService/EtcdRecover" in machine
    state = _mapping(state_grpc.StateBase)
    assert set(state) == {
        "/cosi.resource.State/Get",
        "/cosi.resource.State/List",
        "/cosi.resource.State/Watch",
    }


def test_messages_round_trip_with_upstream_field_numbers() -> None:
    """A hand-encoded upstream ApplyConfigurationRequest (data=1, mode=4) decodes right."""
    machine_pb2 = importlib.import_module("hk8s.talosapi.machine.machine_pb2")
    wire = bytes([0x0A, 0x03]) + b"cfg" + bytes([0x20, 0x02])  # field 1 bytes, field 4 varint
    request = machine_pb2.ApplyConfigurationRequest.FromString(wire)
    assert request.data == b"cfg"
    assert request.mode == machine_pb2.ApplyConfigurationRequest.NO_REBOOT
