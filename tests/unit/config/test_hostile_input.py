"""Hostile or careless input fails fast with a located problem, never a hang or a crash."""

from __future__ import annotations

import os
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from hk8s.config import load_config, parse_config
from hk8s.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = "name: demo\nlocation: fsn1\n"


def problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), "test.yaml")
    return info.value.problems


def test_an_alias_inside_its_own_anchor_is_a_problem_not_a_recursion_error() -> None:
    (problem,) = problems(MINIMAL + "labels: &a [*a]\n")
    assert "recursive alias" in problem.message
    assert problem.line == 3


def test_nested_aliases_cannot_expand_without_bound() -> None:
    # The 261-byte "billion laughs" of the report: nine levels of nine aliases each.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    started = time.monotonic()
    (problem,) = problems(MINIMAL + "\n".join(lines) + "\n")
    assert time.monotonic() - started < 5
    assert "expands to more than" in problem.message


def test_ordinary_aliases_still_work() -> None:
    config = parse_config(
        MINIMAL
        + "workers:\n  - &w {name: a, count: 2}\n  - {<<: *w, name: b}\n  - {<<: *w, name: c}\n"
    )
    assert [(w.name, w.count) for w in config.workers] == [("a", 2), ("b", 2), ("c", 2)]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("control_plane: {count: '3'}", "'3'", "expected a whole number"),
        ("workers: [{name: w, count: true}]", "true", "expected a whole number"),
        ("workers: [{name: w, count: '2'}]", "'2'", "expected a whole number"),
        ("protection: 'yes'", "'yes'", "expected true or false"),
        ("load_balancer: {enabled: 1}", "1", "expected true or false"),
        ("name_suffix_is_unknown: 1", "", "unknown key"),
    ],
)
def test_types_are_strict(field: str, value: str, expected: str) -> None:
    (problem,) = problems(MINIMAL + field + "\n")
    assert expected in problem.message
    assert value in problem.message or not value or "boolean" in problem.message


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "cluster.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as info:
        load_config(fifo)
    assert "not a regular file" in info.value.problems[0].message


def test_a_device_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/dev/zero")
    assert "not a regular file" in info.value.problems[0].message


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "cluster.yaml"
    big.write_text(MINIMAL + "# padding\n" * 200_000)
    with pytest.raises(ConfigError) as info:
        load_config(big)
    assert "larger than" in info.value.problems[0].message
