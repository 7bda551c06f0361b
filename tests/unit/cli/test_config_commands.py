"""`hk8s config validate` and `hk8s config schema` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
import yaml

if TYPE_CHECKING:
    from collections.abc import Callable

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
EXAMPLES = sorted(CONFIGS.glob("*.yaml"))
SCHEMA_COMMENT = "# yaml-language-server: $schema=./cluster.schema.json"

HEAD = "name: demo\nlocation: fsn1\n"

# (id, cluster.yaml text, path named in the message, line of the problem)
MALFORMED = [
    ("unclosed-flow-list", "name: demo\nlocation: [fsn1\n", "(yaml)", 3),
    ("bad-indentation", "name: demo\n  location: fsn1\n", "(yaml)", 2),
    ("empty-file", "# nothing here\n", "(root)", 1),
    ("top-level-list", "- name: demo\n", "(root)", 1),
    ("duplicate-key", HEAD + "name: other\n", "name", 3),
    ("missing-location", "name: demo\n", "location", 1),
    ("unknown-top-level-key", HEAD + "worker: []\n", "worker", 3),
    ("unknown-nested-key", HEAD + "control_plane:\n  cnt: 3\n", "control_plane.cnt", 4),
    ("token-field", HEAD + "hcloud_token: abc\n", "hcloud_token", 3),
    ("even-control-plane", HEAD + "control_plane:\n  count: 2\n", "control_plane.count", 4),
    ("too-many-control-plane", HEAD + "control_plane: {count: 11}\n", "control_plane.count", 3),
    (
        "pods-overlap-services",
        HEAD + "network:\n  pod_cidr: 10.96.0.0/16\n",
        "network.pod_cidr",
        4,
    ),
    (
        "subnet-outside-network",
        HEAD + "network:\n  node_subnet: 10.1.0.0/24\n",
        "network.node_subnet",
        4,
    ),
    (
        "services-overlap-network",
        HEAD + "network:\n  service_cidr: 10.0.0.0/12\n",
        "network.service_cidr",
        4,
    ),
    ("cidr-host-bits", HEAD + "network:\n  cidr: 10.0.0.1/16\n", "network.cidr", 4),
    (
        "public-network",
        HEAD + "network:\n  cidr: 8.8.0.0/16\n  node_subnet: 8.8.1.0/24\n",
        "network.cidr",
        4,
    ),
    ("not-a-cidr", HEAD + "network:\n  pod_cidr: pods\n", "network.pod_cidr", 4),
    ("unsupported-talos", HEAD + "talos:\n  version: v1.10.3\n", "talos.version", 4),
    ("garbage-talos-version", HEAD + "talos: {version: latest}\n", "talos.version", 3),
    (
        "kubernetes-too-new-for-talos",
        HEAD + "talos: {version: v1.11.2}\nkubernetes:\n  version: 1.36.0\n",
        "kubernetes.version",
        5,
    ),
    (
        "kubernetes-version-as-number",
        HEAD + "kubernetes:\n  version: 1.34\n",
        "kubernetes.version",
        4,
    ),
    ("uppercase-name", "name: Demo\nlocation: fsn1\n", "name", 1),
    ("name-too-long", f"name: {'a' * 41}\nlocation: fsn1\n", "name", 1),
    ("unknown-location", "name: demo\nlocation: fsn7\n", "location", 2),
    ("zone-mismatch", HEAD + "network_zone: us-east\n", "network_zone", 3),
    (
        "worker-in-other-zone",
        HEAD + "workers:\n  - name: w\n    location: ash\n",
        "workers[0].location",
        5,
    ),
    (
        "duplicate-pool",
        HEAD + "workers:\n  - name: w\n  - name: w\n",
        "workers[1].name",
        5,
    ),
    ("reserved-pool-name", HEAD + "workers:\n  - name: cp\n", "workers[0].name", 4),
    ("negative-count", HEAD + "workers:\n  - name: w\n    count: -1\n", "workers[0].count", 5),
    (
        "bad-taint-effect",
        HEAD + "workers:\n  - name: w\n    taints: [a=b:NoScheduling]\n",
        "workers[0].taints[0]",
        5,
    ),
    (
        "bad-taint-syntax",
        HEAD + "workers:\n  - name: w\n    taints:\n      - just-a-key\n",
        "workers[0].taints[0]",
        6,
    ),
    (
        "bad-label-key",
        HEAD + "control_plane:\n  labels:\n    'a b': x\n",
        "control_plane.labels['a b']",
        5,
    ),
    (
        "arm-outside-eu",
        "name: demo\nlocation: ash\nworkers:\n  - name: arm\n    server_type: cax21\n",
        "workers[0].server_type",
        5,
    ),
    (
        "schematic-and-extensions",
        HEAD + f"talos:\n  schematic: {'a' * 64}\n  extensions: [siderolabs/iscsi-tools]\n",
        "talos.extensions",
        5,
    ),
    ("bad-schematic", HEAD + "talos:\n  schematic: abc123\n", "talos.schematic", 4),
    (
        "bad-image-factory",
        HEAD + "talos:\n  image_factory: factory.talos.dev\n",
        "talos.image_factory",
        4,
    ),
    (
        "patch-not-a-mapping",
        HEAD + "talos:\n  patches:\n    all:\n      - foo\n",
        "talos.patches.all[0]",
        6,
    ),
    (
        "bad-firewall-source",
        HEAD + "firewall:\n  kube_api_sources: [home]\n",
        "firewall.kube_api_sources[0]",
        4,
    ),
    (
        "empty-firewall-sources",
        HEAD + "firewall:\n  talos_api_sources: []\n",
        "firewall.talos_api_sources",
        4,
    ),
    (
        "bad-addon-version",
        HEAD + "addons:\n  cilium:\n    version: latest\n",
        "addons.cilium.version",
        5,
    ),
    ("unknown-addon", HEAD + "addons:\n  traefik: {enabled: true}\n", "addons.traefik", 4),
    ("bad-lb-type", HEAD + "load_balancer:\n  type: lb99\n", "load_balancer.type", 4),
    ("protection-not-bool", HEAD + "protection: maybe\n", "protection", 3),
    # The version matrix (hk8s.config._versions).
    (
        "kubernetes-outside-talos-range",
        HEAD + "talos: {version: v1.14.1}\nkubernetes: {version: 1.31.4}\n",
        "kubernetes.version",
        4,
    ),
    (
        "ccm-without-datacenter-fix",
        HEAD + "addons:\n  hcloud_ccm:\n    version: 1.27.0\n",
        "addons.hcloud_ccm.version",
        5,
    ),
    (
        "chart-outside-kubernetes-range",
        HEAD + "addons:\n  cilium: {version: 1.18.4}\n",
        "addons.cilium.version",
        4,
    ),
    ("talos-not-supported", HEAD + "talos: {version: v1.15.0}\n", "talos.version", 3),
]


@pytest.mark.parametrize(
    ("text", "path", "line"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_config_exits_2_naming_path_and_line(
    cli: Callable[..., Any],
    write: Callable[[str], Path],
    text: str,
    path: str,
    line: int,
) -> None:
    result = cli("config", "validate", "-f", str(write(text)))
    assert result.exit_code == 2
    assert result.stdout == ""
    err = result.stderr
    assert f"{path} (line {line}:" in err, err
    assert "Traceback" not in err
    assert err.startswith("error: ")
    assert "\n    hint: " in err


def test_there_are_enough_malformed_cases() -> None:
    assert len(MALFORMED) >= 20


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"dev.yaml", "demo.yaml", "production.yaml", "mixed-arch.yaml"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate(cli: Callable[..., Any], example: Path) -> None:
    result = cli("config", "validate", "-f", str(example))
    assert result.exit_code == 0, result.stderr
    assert f"{example}: valid" in result.stdout
    assert example.read_text().startswith(SCHEMA_COMMENT + "\n")


def test_validate_needs_no_token_and_says_plan_checks_availability(
    cli: Callable[..., Any], write: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline: a type Hetzner no longer sells passes here; `plan` is where it is refused."""
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    monkeypatch.setenv("HCLOUD_ENDPOINT", "http://127.0.0.1:9/v1")  # nothing listens
    result = cli(
        "config", "validate", "-f", str(write(HEAD + "control_plane: {server_type: cx22}\n"))
    )
    assert result.exit_code == 0, result.stderr
    assert "checked against the API by `hk8s plan`" in result.stdout
    data = json.loads(
        cli("-o", "json", "config", "validate", "-f", str(CONFIGS / "dev.yaml")).stdout
    )
    assert "hk8s plan" in data["note"]


def test_example_shapes_match_their_promises(cli: Callable[..., Any]) -> None:
    def config(name: str) -> dict[str, Any]:
        result = cli("--output", "json", "config", "validate", "-f", str(CONFIGS / name))
        assert result.exit_code == 0
        data: dict[str, Any] = json.loads(result.stdout)["config"]
        return data

    prod = config("production.yaml")
    assert prod["control_plane"]["count"] == 3
    assert prod["load_balancer"]["enabled"] is True
    assert len(prod["workers"]) >= 2
    demo = config("demo.yaml")
    assert demo["control_plane"]["count"] == 3
    assert sum(w["count"] for w in demo["workers"]) == 2
    dev = config("dev.yaml")
    assert dev["control_plane"]["count"] == 1
    assert sum(w["count"] for w in dev["workers"]) <= 1
    mixed = config("mixed-arch.yaml")
    types = {w["server_type"][:3] for w in mixed["workers"]}
    assert "cax" in types
    assert types - {"cax"}


def test_validate_json_output_lists_problems_on_stdout(
    cli: Callable[..., Any], write: Callable[[str], Path]
) -> None:
    result = cli("-o", "json", "config", "validate", "-f", str(write(HEAD + "protection: 3\n")))
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "ConfigError"
    assert error["problems"] == [
        {
            "path": "protection",
            "line": 3,
            "column": 13,
            "message": "expected true or false, got the number 3",
            "hint": "write true or false, without quotes",
        }
    ]


def test_validate_missing_file_is_a_usage_error(cli: Callable[..., Any], tmp_path: Path) -> None:
    result = cli("config", "validate", "-f", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 2
    assert "file not found" in result.stderr


def test_all_problems_in_one_run(cli: Callable[..., Any], write: Callable[[str], Path]) -> None:
    text = "name: Bad\nlocation: fsn9\ncontrol_plane: {count: 4}\ntoken: x\n"
    result = cli("config", "validate", "-f", str(write(text)))
    assert result.exit_code == 2
    assert "4 problems found" in result.stderr
    assert "HCLOUD_TOKEN" in result.stderr


def test_schema_command_prints_the_checked_in_schema(cli: Callable[..., Any]) -> None:
    result = cli("config", "schema")
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    checked_in = json.loads((CONFIGS / "cluster.schema.json").read_text())
    assert printed == checked_in, "run: .venv/bin/hk8s config schema > configs/cluster.schema.json"


def test_schema_is_valid_and_accepts_the_examples(cli: Callable[..., Any]) -> None:
    schema = json.loads(cli("config", "schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for example in EXAMPLES:
        errors = list(validator.iter_errors(yaml.safe_load(example.read_text())))
        assert errors == [], f"{example.name}: {errors}"


def test_schema_patterns_are_ecmascript_regexes(cli: Callable[..., Any]) -> None:
    # Editors evaluate "pattern" as ECMA-262 regexes: Python's (?P<name>...) is a syntax error.
    assert "(?P<" not in cli("config", "schema").stdout


def test_schema_rejects_unknown_keys_and_a_missing_name(cli: Callable[..., Any]) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(cli("config", "schema").stdout))
    assert not validator.is_valid({"name": "a", "location": "fsn1", "nmae": "x"})
    assert not validator.is_valid({"location": "fsn1"})
    assert not validator.is_valid({"name": "a", "location": "fsn1", "workers": [{"count": 1}]})
