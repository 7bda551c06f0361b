from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hk8s.errors import ConfigError
from hk8s.machineconfig import (
    PatchError,
    apply_patch,
    build_machine_config,
    json_merge_patch,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.config import ClusterConfig
    from hk8s.pki import SecretsBundle

BASE: list[dict[str, Any]] = [
    {
        "version": "v1alpha1",
        "machine": {
            "type": "worker",
            "nodeLabels": {"a": "1", "b": "2"},
            "certSANs": ["x"],
            "network": {"interfaces": [{"interface": "eth0", "dhcp": True}]},
        },
        "cluster": {
            "network": {"podSubnets": ["10.244.0.0/16"]},
            "apiServer": {
                "admissionControl": [{"name": "PodSecurity", "configuration": {"k": 1}}],
                "auditPolicy": {"rules": [{"level": "Metadata"}], "kind": "Policy"},
            },
        },
    },
    {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "n1"},
]


def test_maps_merge_scalars_replace_lists_append() -> None:
    out = apply_patch(BASE, {"machine": {"nodeLabels": {"c": "3", "a": "9"}, "certSANs": ["y"]}})
    assert out[0]["machine"]["nodeLabels"] == {"a": "9", "b": "2", "c": "3"}
    assert out[0]["machine"]["certSANs"] == ["x", "y"]
    assert BASE[0]["machine"]["nodeLabels"] == {"a": "1", "b": "2"}  # input untouched


def test_replace_fields_as_upstream_merge_tags() -> None:
    out = apply_patch(
        BASE,
        {
            "cluster": {
                "network": {"podSubnets": ["10.50.0.0/16"]},
                "apiServer": {"auditPolicy": {"rules": []}},
            }
        },
    )
    assert out[0]["cluster"]["network"]["podSubnets"] == ["10.50.0.0/16"]
    assert out[0]["cluster"]["apiServer"]["auditPolicy"] == {"rules": []}


def test_keyed_lists_merge_by_name() -> None:
    out = apply_patch(
        BASE,
        {
            "machine": {"network": {"interfaces": [{"interface": "eth0", "mtu": 1450}]}},
            "cluster": {"apiServer": {"admissionControl": [{"name": "Other"}]}},
        },
    )
    assert out[0]["machine"]["network"]["interfaces"] == [
        {"interface": "eth0", "dhcp": True, "mtu": 1450}
    ]
    names = [p["name"] for p in out[0]["cluster"]["apiServer"]["admissionControl"]]
    assert names == ["PodSecurity", "Other"]


def test_patch_delete_directives() -> None:
    patch = yaml.safe_load(
        """
machine:
  nodeLabels:
    a:
      $patch: delete
  network:
    interfaces:
      - interface: eth0
        $patch: delete
cluster:
  apiServer:
    admissionControl:
      - name: PodSecurity
        $patch: delete
"""
    )
    out = apply_patch(BASE, patch)
    assert out[0]["machine"]["nodeLabels"] == {"b": "2"}
    assert out[0]["machine"]["network"]["interfaces"] == []
    assert out[0]["cluster"]["apiServer"]["admissionControl"] == []


def test_null_deletes_as_in_rfc_7386() -> None:
    out = apply_patch(BASE, {"machine": {"nodeLabels": {"a": None}, "certSANs": None}})
    assert out[0]["machine"]["nodeLabels"] == {"b": "2"}
    assert "certSANs" not in out[0]["machine"]


def test_json_merge_mode_replaces_lists() -> None:
    out = apply_patch(
        BASE, {"$patch": "json-merge", "machine": {"certSANs": ["y"], "nodeLabels": {"a": None}}}
    )
    assert out[0]["machine"]["certSANs"] == ["y"]
    assert out[0]["machine"]["nodeLabels"] == {"b": "2"}


def test_rfc_7386_examples() -> None:
    # RFC 7386 section 3, the worked example.
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert json_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }
    assert json_merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert json_merge_patch({"a": {"bb": {"ccc": None}}}, {"a": {"bb": {"ccc": None}}}) == {
        "a": {"bb": {}}
    }


def test_documents_by_kind() -> None:
    out = apply_patch(BASE, {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "z"})
    assert out[1]["hostname"] == "z"
    added = {
        "apiVersion": "v1alpha1",
        "kind": "ResolverConfig",
        "nameservers": [{"address": "1.1.1.1"}],
    }
    out = apply_patch(BASE, added)
    assert out[2] == added
    out = apply_patch(
        BASE, {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "$patch": "delete"}
    )
    assert [d.get("kind") for d in out] == [None]


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        (["not", "a", "mapping"], "a patch must be a mapping, not a list"),
        ({"machine": {"nodeLabels": "x"}}, "machine.nodeLabels: expected a mapping"),
        ({"machine": {"certSANs": {"a": 1}}}, "machine.certSANs: expected a list"),
        ({"machine": {"type": ["x"]}}, "machine.type: expected a string"),
        ({"$patch": "explode"}, "unknown directive"),
        ({"machine": {"$patch": "replace"}}, "unexpected directive"),
    ],
)
def test_bad_patches(patch: object, fragment: str) -> None:
    with pytest.raises(PatchError, match=fragment):
        apply_patch(BASE, patch)


# --- through the renderer, with ConfigError naming the patch -------------------------------


def _build(cfg: ClusterConfig, bundle: SecretsBundle, pool: str) -> list[dict[str, Any]]:
    return build_machine_config(
        cfg, bundle, cfg.pool(pool), endpoint="10.0.1.254", hostname=f"demo-{pool}-1"
    )


def test_patches_apply_all_then_role(
    example_bundle: SecretsBundle,
    make_config: Callable[..., ClusterConfig],
    validators: dict[str, Any],
) -> None:
    cfg = make_config(
        "1.12",
        patches="""
all:
  - machine: {sysctls: {net.core.somaxconn: "1024"}, nodeLabels: {from: all}}
control_plane:
  - machine: {nodeLabels: {from: cp}}
    cluster: {apiServer: {extraArgs: {feature-gates: X=true}}}
worker:
  - machine: {kubelet: {extraArgs: {max-pods: "200"}}}
  - {$patch: json-merge, machine: {certSANs: [only.example]}}
""",
    )
    cp = _build(cfg, example_bundle, "cp")
    assert cp[0]["machine"]["nodeLabels"]["from"] == "cp"
    assert cp[0]["machine"]["sysctls"] == {"net.core.somaxconn": "1024"}
    assert cp[0]["cluster"]["apiServer"]["extraArgs"] == {"feature-gates": "X=true"}
    assert "extraArgs" not in cp[0]["machine"]["kubelet"]
    worker = _build(cfg, example_bundle, "app")
    assert worker[0]["machine"]["nodeLabels"]["from"] == "all"
    assert worker[0]["machine"]["kubelet"]["extraArgs"] == {"max-pods": "200"}
    assert worker[0]["machine"]["certSANs"] == ["only.example"]
    for docs in (cp, worker):
        assert list(validators["1.12"][0].iter_errors(docs[0])) == []


def test_bad_patches_are_all_reported_with_their_index(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    cfg = make_config(
        "1.13",
        patches="""
all:
  - machine: {install: /dev/sdb}
  - machine: {nodeLabels: {ok: "yes"}}
  - machine: {kubelett: {}}
worker:
  - machine: {type: controlplane}
""",
    )
    with pytest.raises(ConfigError) as info:
        _build(cfg, example_bundle, "app")
    problems = {p.path: p.message for p in info.value.problems}
    assert set(problems) == {"talos.patches.all[0]", "talos.patches.all[2]"}
    assert "machine.install: expected a mapping" in problems["talos.patches.all[0]"]
    assert "did you mean 'kubelet'" in problems["talos.patches.all[2]"]
    text = str(info.value)
    assert "talos.patches.all[0]" in text and "hint:" in text

    good = make_config("1.13", patches="worker: [{machine: {type: controlplane}}]")
    with pytest.raises(ConfigError) as info:
        _build(good, example_bundle, "app")
    assert info.value.problems[0].path == "talos.patches.worker[0]"
    assert "must stay 'worker'" in info.value.problems[0].message


@pytest.mark.parametrize("minor", ["1.11", "1.12", "1.13"])
def test_deprecated_fields_machinery_still_loads_are_accepted(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig], minor: str
) -> None:
    # 1.12 moved machine.time/registries (1.13 also network/env) into their own documents
    # and out of the JSON schema, but machinery still loads and validates them (checked by
    # tests/oracles/talos): configs/production.yaml sets machine.time on v1.12.
    patches = (
        "all: [{machine: {time: {servers: [time.cloudflare.com]}, env: {A: b},"
        " registries: {mirrors: {docker.io: {endpoints: ['https://m.example']}}}}}]"
    )
    machine = _build(make_config(minor, patches=patches), example_bundle, "cp")[0]["machine"]
    assert machine["time"]["servers"] == ["time.cloudflare.com"]
    assert machine["env"] == {"A": "b"} and machine["registries"]["mirrors"]


@pytest.mark.parametrize(
    "patch",
    [
        "{machine: {install: {wipe: 'no'}}}",
        "{$patch: json-merge, machine: {features: {kubePrism: {port: '7445'}}}}",
        "{$patch: json-merge, machine: {install: /dev/sdb}}",
    ],
)
def test_patches_that_change_a_value_type_are_refused(
    patch: str, example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    cfg = make_config("1.12", patches=f"all: [{patch}]")
    with pytest.raises(ConfigError) as info:
        _build(cfg, example_bundle, "cp")
    assert info.value.problems[0].path == "talos.patches.all[0]"
    assert "expected a" in info.value.problems[0].message


def _schema_kinds(minor: str) -> set[str]:
    import json

    import _reference  # type: ignore[import-not-found]

    schema = json.loads((_reference.REFERENCE / f"talos/v{minor}/config.schema.json").read_text())
    kinds: set[str] = set()
    for ref in schema["oneOf"]:
        kind = schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]["properties"].get("kind")
        if kind is not None:  # v1alpha1 itself has no kind
            kinds.update(kind.get("enum", [kind.get("const")]))
    return kinds - {None}  # type: ignore[operator]


@pytest.mark.parametrize("minor", ["1.11", "1.12", "1.13", "1.14"])
def test_each_release_knows_the_documents_its_schema_registers(minor: str) -> None:
    from hk8s.machineconfig._contract import SUPPORTED_CONTRACTS

    kinds = _schema_kinds(minor)
    if minor == "1.14":
        # The 1.14 schema's name for the kind Talos registers and writes (upstream schema bug).
        kinds = (kinds - {"UnattendedInstall"}) | {"UnattendedInstallConfig"}
    assert SUPPORTED_CONTRACTS[minor].document_kinds == kinds


def test_a_document_the_release_does_not_have_is_refused(
    example_bundle: SecretsBundle, make_config: Callable[..., ClusterConfig]
) -> None:
    """configs/production.yaml's TimeSyncConfig (Talos 1.12+) rendered for Talos 1.11 passed
    hk8s and failed machinery's loader ('"TimeSyncConfig" "v1alpha1": not registered')."""
    patches = "all: [{apiVersion: v1alpha1, kind: TimeSyncConfig, ntp: {servers: [a.example]}}]"
    with pytest.raises(ConfigError) as info:
        _build(make_config("1.11", patches=patches), example_bundle, "cp")
    assert info.value.problems[0].path == "talos.patches.all[0]"
    assert "Talos 1.11 has no TimeSyncConfig document" in info.value.problems[0].message
    docs = _build(make_config("1.12", patches=patches), example_bundle, "cp")
    assert any(d.get("kind") == "TimeSyncConfig" for d in docs)
