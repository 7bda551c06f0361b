"""Image Factory schematics: parsing and the canonical form whose SHA-256 is the schematic id.

The real factory (siderolabs/image-factory ``pkg/schematic/schematic.go``) decodes the body
as YAML with unknown fields rejected, re-marshals it with go-yaml (4-space indent, sequences
indented under their key, empty sections omitted) and uses the SHA-256 of that text as the id.
We emit the same text for the fields hk8s uses, so ids match factory.talos.dev's:

>>> schematic_id(parse_schematic(b"customization: {}"))
'376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba'
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["DEFAULT_SCHEMATIC_ID", "Schematic", "SchematicError", "parse_schematic", "schematic_id"]

# sha256("customization: {}\n"): the schematic with no customization at all.
DEFAULT_SCHEMATIC_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"

_CUSTOMIZATION_KEYS = {"extraKernelArgs", "meta", "systemExtensions"}
_PLAIN = re.compile(r"^[A-Za-z0-9_./=-][A-Za-z0-9_./=:+ -]*$")


class SchematicError(ValueError):
    """The body is not a schematic the factory accepts (the factory answers 400)."""


@dataclass(frozen=True)
class Schematic:
    extensions: tuple[str, ...] = ()
    kernel_args: tuple[str, ...] = ()
    meta: tuple[tuple[int, str], ...] = field(default=())

    def canonical(self) -> str:
        """The go-yaml text of the schematic, as ``Schematic.Marshal`` produces it."""
        lines = ["customization:"]
        if self.kernel_args:
            lines.append("    extraKernelArgs:")
            lines += [f"        - {_scalar(arg)}" for arg in self.kernel_args]
        if self.meta:
            lines.append("    meta:")
            for key, value in self.meta:
                lines += [f"        - key: {key}", f"          value: {_scalar(value)}"]
        if self.extensions:
            lines += ["    systemExtensions:", "        officialExtensions:"]
            lines += [f"            - {_scalar(name)}" for name in self.extensions]
        if len(lines) == 1:
            return "customization: {}\n"
        return "\n".join(lines) + "\n"


def _scalar(value: str) -> str:
    if _PLAIN.match(value) and not value.endswith(" ") and value not in {"true", "false", "null"}:
        return value
    return json.dumps(value)


def _expect(kind: type, value: Any, where: str) -> Any:
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise SchematicError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def parse_schematic(body: bytes) -> Schematic:
    """Parse a JSON or YAML schematic; unknown fields are errors, as upstream's KnownFields."""
    try:
        doc = yaml.safe_load(body.decode() or "{}")
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SchematicError(f"invalid schematic: {exc}") from None
    root = _expect(dict, doc, "schematic")
    unknown = set(root) - {"customization"}
    if unknown:
        raise SchematicError(f"field {sorted(unknown)[0]} not found in type schematic.Schematic")
    custom = _expect(dict, root.get("customization"), "customization")
    unknown = set(custom) - _CUSTOMIZATION_KEYS
    if unknown:
        name = sorted(unknown)[0]
        raise SchematicError(f"field {name} not found in type schematic.Customization")
    ext_section = _expect(dict, custom.get("systemExtensions"), "systemExtensions")
    if set(ext_section) - {"officialExtensions"}:
        raise SchematicError("systemExtensions: only officialExtensions is supported")
    extensions = _expect(list, ext_section.get("officialExtensions"), "officialExtensions")
    kernel_args = _expect(list, custom.get("extraKernelArgs"), "extraKernelArgs")
    meta_items = _expect(list, custom.get("meta"), "meta")
    meta: list[tuple[int, str]] = []
    for item in meta_items:
        entry = _expect(dict, item, "meta[]")
        key = entry.get("key")
        if not isinstance(key, int) or not 0 <= key <= 255:
            raise SchematicError("meta[].key: expected an integer 0..255")
        meta.append((key, str(entry.get("value", ""))))
    for name in [*extensions, *kernel_args]:
        if not isinstance(name, str) or not name:
            raise SchematicError(f"expected a non-empty string, got {name!r}")
    return Schematic(tuple(extensions), tuple(kernel_args), tuple(meta))


def schematic_id(schematic: Schematic) -> str:
    return hashlib.sha256(schematic.canonical().encode()).hexdigest()
