"""Fault specs: files a user writes, validated with every problem reported."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hk8s.errors import ConfigError
from hk8s.sim.hcloud import FaultInjector, FaultSpec

if TYPE_CHECKING:
    from pathlib import Path


def test_yaml_and_json_files_load(tmp_path: Path) -> None:
    yaml_file = tmp_path / "f.yaml"
    yaml_file.write_text(
        "seed: 4\nerrors:\n  - {method: POST, path: /servers, rate: 0.5, code: 503}\n"
        "actions:\n  - {command: create_image}\nnever_running: ['*-3']\n"
    )
    spec = FaultSpec.load(yaml_file)
    assert spec.seed == 4 and spec.errors[0].code == 503 and spec.never_running == ["*-3"]
    json_file = tmp_path / "f.json"
    json_file.write_text('{"latency": [{"distribution": "exponential", "mean": 0.2}]}')
    assert FaultSpec.load(json_file).latency[0].mean == 0.2


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("errors:\n  - {rate: 2, code: 418}\nbogus: 1\n")
    with pytest.raises(ConfigError) as info:
        FaultSpec.load(path)
    where = {p.path for p in info.value.problems}
    assert {"errors.0.rate", "errors.0.code", "bogus"} <= where
    with pytest.raises(ConfigError):
        FaultSpec.load(tmp_path / "missing.yaml")


def test_injector_is_deterministic_per_seed_and_respects_limits() -> None:
    spec = FaultSpec.parse({"seed": 11, "errors": [{"path": "/servers*", "rate": 0.3}]})

    def pattern() -> list[bool]:
        injector = FaultInjector(spec)
        return [
            injector.request_error("GET", "/servers", "/servers") is not None for _ in range(50)
        ]

    assert pattern() == pattern() and 0 < sum(pattern()) < 50
    limited = FaultInjector(FaultSpec.parse({"actions": [{"command": "create_*", "limit": 2}]}))
    hits = [limited.action_error("create_image") for _ in range(4)]
    assert [h is not None for h in hits] == [True, True, False, False]
    assert limited.action_error("poweron") is None
