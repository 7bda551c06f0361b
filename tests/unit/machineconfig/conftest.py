from __future__ import annotations

import json
from typing import TYPE_CHECKING

import jsonschema  # type: ignore[import-untyped]
import pytest

import _reference
from hk8s.config import ClusterConfig, parse_config
from hk8s.pki import SecretsBundle, load_secrets

if TYPE_CHECKING:
    from collections.abc import Callable

REFERENCE = _reference.REFERENCE / "talos"
CONTRACTS = ("1.11", "1.12", "1.13", "1.14")
VERSIONS = {"1.11": "v1.11.3", "1.12": "v1.12.0", "1.13": "v1.13.0", "1.14": "v1.14.1"}

Validators = dict[str, tuple[jsonschema.protocols.Validator, jsonschema.protocols.Validator]]


@pytest.fixture(scope="session")
def example_bundle() -> SecretsBundle:
    """The talosctl-written example bundle: configs built from it must validate."""
    return load_secrets(REFERENCE / "secrets.example.yaml")


@pytest.fixture(scope="session")
def validators() -> Validators:
    """Per contract: (validator of the v1alpha1 document, validator of any document)."""
    out: Validators = {}
    for minor in CONTRACTS:
        schema = json.loads((REFERENCE / f"v{minor}" / "config.schema.json").read_text())
        cls = jsonschema.validators.validator_for(schema)
        v1alpha1 = {
            "$schema": schema["$schema"],
            "$defs": schema["$defs"],
            "$ref": "#/$defs/v1alpha1.Config",
        }
        out[minor] = (cls(v1alpha1), cls(schema))
    return out


@pytest.fixture
def make_config() -> Callable[..., ClusterConfig]:
    def make(
        minor: str = "1.12", extra: str = "", workers: bool = True, patches: str = ""
    ) -> ClusterConfig:
        """``patches`` is the YAML of ``talos.patches`` (its keys at column 0)."""
        talos_patches = "".join(f"\n    {line}" for line in patches.strip().splitlines())
        pools = (
            """
workers:
  - name: app
    count: 2
    labels: {tier: app}
    taints: ["dedicated=gpu:NoSchedule", "spot:NoExecute"]
"""
            if workers
            else ""
        )
        text = f"""
name: demo
location: fsn1
talos:
  version: {VERSIONS[minor]}
  patches:{talos_patches or " {}"}
control_plane:
  count: 3
  labels: {{role: cp}}
{pools}
{extra}
"""
        return parse_config(text)

    return make
