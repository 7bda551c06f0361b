"""Label rules and the selector language, per docs.hetzner.cloud "Labels" / "Label Selector"."""

from __future__ import annotations

import pytest

from hk8s.model.labels import (
    LabelError,
    Requirement,
    format_selector,
    label_problems,
    match_selector,
    parse_selector,
    sanitize_label_value,
    validate_labels,
)

LABELS = {"env": "production", "type": "web", "example.com/my": "label", "just-a-key": ""}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        # docs.hetzner.cloud#label-selector table, one row each
        ("env==production", True),
        ("env=production", True),
        ("env=staging", False),
        ("env!=production", False),
        ("env!=staging", True),
        ("env", True),
        ("missing", False),
        ("!env", False),
        ("!missing", True),
        ("env in (testing,production)", True),
        ("env in (testing,staging)", False),
        ("env notin (testing,staging)", True),
        ("env notin (production)", False),
        ("env==production,!missing", True),
        ("env==production,!type", False),
        # the docs' examples
        ("env=production,type!=database", True),
        # prefixed keys and empty values are valid labels
        ("example.com/my=label", True),
        ("just-a-key=", True),
        ("just-a-key", True),
        # whitespace around operators and inside sets is tolerated
        (" env = production , type in ( web , db ) ", True),
        # an empty selector selects everything (no filter)
        ("", True),
    ],
)
def test_selector_matches_documented_semantics(selector: str, expected: bool) -> None:
    assert match_selector(selector, LABELS) is expected


def test_negative_operators_match_resources_without_the_key() -> None:
    # Kubernetes set-based semantics (apimachinery labels/selector.go), which Hetzner follows:
    # "!=" and "notin" hold when the key is absent.
    assert match_selector("role!=worker", {})
    assert match_selector("role notin (worker)", {})
    assert not match_selector("role in (worker)", {})


def test_parsed_selector_round_trips_to_text() -> None:
    text = "a=1,b!=2,c in (x,y),d notin (z),e,!f"
    selector = parse_selector(text)
    assert str(selector) == text
    assert selector.requirements[2] == Requirement("c", "in", ("x", "y"))
    assert parse_selector(str(selector)) == selector


@pytest.mark.parametrize(
    "bad",
    ["=v", "a in (x", "a in x", "a b", "a=b c", "a,,b", "!", "a=(", "-bad=1", "a=b)", "a=$"],
)
def test_invalid_selectors_raise_label_error(bad: str) -> None:
    with pytest.raises(LabelError, match="invalid label selector"):
        parse_selector(bad)


def test_equality_with_nothing_selects_the_empty_value() -> None:
    assert parse_selector("a==").requirements == (Requirement("a", "=", ("",)),)
    assert not match_selector("a==", {"a": "x"})


def test_label_validation_follows_hetzner_rules() -> None:
    validate_labels(LABELS)  # the docs' example labels are valid
    assert label_problems({"a" * 63: "b" * 63}) == []
    problems = label_problems(
        {
            "a" * 64: "x",
            "-start": "x",
            "ok": "bad value",
            "ok2": "-x",
            "Bad_Prefix/x": "1",
            "hetzner.cloud/x": "1",
            "/x": "1",
            "v": "c" * 64,
        }
    )
    assert len(problems) == 8


def test_validate_labels_raises_with_every_problem() -> None:
    with pytest.raises(LabelError) as info:
        validate_labels({"-a": "1", "b": "-"})
    assert "'-a'" in str(info.value) and "'b'" in str(info.value)


def test_format_selector_is_sorted_equality_terms() -> None:
    assert format_selector({"managed-by": "hk8s", "cluster": "demo"}) == (
        "cluster=demo,managed-by=hk8s"
    )
    assert format_selector({}) == ""
    with pytest.raises(LabelError):
        format_selector({"a": "b,c"})


def test_sanitize_label_value_produces_valid_values() -> None:
    assert sanitize_label_value("v1.11.0+dirty") == "v1.11.0-dirty"
    long = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
    cut = sanitize_label_value(long)
    assert len(cut) == 63 and label_problems({"schematic": cut}) == []
    assert sanitize_label_value("--x--") == "x"
