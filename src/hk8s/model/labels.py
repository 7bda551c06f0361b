"""Hetzner Cloud labels: validation, the label-selector language, and building selectors.

Labels are hk8s' index (design.md section 3): every resource is found by a label selector, so
the client (``providers.hcloud``) and the simulator (``sim.hcloud``) must agree exactly on what
a selector means. Both use this module.

The rules follow the Hetzner Cloud API reference, sections "Labels" and "Label Selector"
(https://docs.hetzner.cloud/#labels, also in ``reference/hcloud/openapi.json`` ``info``),
which in turn follow Kubernetes' label syntax and set-based selectors.

>>> selector = parse_selector("cluster=demo,role in (control-plane,worker),!deleting")
>>> selector.matches({"cluster": "demo", "role": "worker"})
True
>>> format_selector({"cluster": "demo", "managed-by": "hk8s"})
'cluster=demo,managed-by=hk8s'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hk8s.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LabelError",
    "Operator",
    "Requirement",
    "Selector",
    "format_selector",
    "label_problems",
    "match_selector",
    "parse_selector",
    "sanitize_label_value",
    "validate_labels",
]

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

# "a string of 63 characters or less, beginning and ending with an alphanumeric character with
# dashes, underscores, dots, and alphanumerics between" (docs.hetzner.cloud, Labels).
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
# The optional key prefix is a DNS subdomain of at most 253 characters.
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_RESERVED_PREFIX = "hetzner.cloud"
_TOKEN = re.compile(r"\s*(==|!=|=|\(|\)|,|!|[A-Za-z0-9._/-]+)")


class LabelError(UsageError):
    """A label or a label selector breaks Hetzner's syntax rules."""


def _key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if not slash:
        prefix, name = "", key
    elif not prefix:
        return f"label key {key!r} has an empty prefix"
    if not _NAME.match(name):
        return (
            f"label key {key!r}: the name must be 1-63 characters, start and end with a letter"
            " or digit, and contain only letters, digits, '-', '_' and '.'"
        )
    if slash:
        if len(prefix) > 253 or not all(_DNS_LABEL.match(part) for part in prefix.split(".")):
            return f"label key {key!r}: the prefix must be a DNS subdomain (at most 253 chars)"
        if prefix == _RESERVED_PREFIX:
            return f"label key {key!r}: the prefix 'hetzner.cloud/' is reserved"
    return None


def _value_problem(key: str, value: str) -> str | None:
    if value == "" or _NAME.match(value):
        return None
    return (
        f"label {key!r} has an invalid value {value!r}: values must be empty or 1-63 characters,"
        " start and end with a letter or digit, and contain only letters, digits, '-', '_' and '.'"
    )


def label_problems(labels: Mapping[str, object]) -> list[str]:
    """Every rule a label set breaks, one message per problem (empty when the labels are valid)."""
    problems: list[str] = []
    for key, value in labels.items():
        if not isinstance(key, str) or (problem := _key_problem(key)) is not None:
            problems.append(problem or f"label key {key!r} is not a string")
            continue
        if not isinstance(value, str):
            problems.append(f"label {key!r} has a non-string value {value!r}")
        elif (problem := _value_problem(key, value)) is not None:
            problems.append(problem)
    return problems


def validate_labels(labels: Mapping[str, object]) -> None:
    """Raise ``LabelError`` listing every problem of ``labels``; do nothing when they are valid."""
    problems = label_problems(labels)
    if problems:
        raise LabelError("; ".join(problems), hint="see https://docs.hetzner.cloud/#labels")


def sanitize_label_value(text: str) -> str:
    """Turn free text (a version, a schematic id) into a valid label value.

    Invalid characters become ``-``, the result is cut to 63 characters and trimmed so it starts
    and ends with a letter or digit. ``sanitize_label_value("v1.11.0+dirty") == "v1.11.0-dirty"``.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a selector, e.g. ``role in (worker)`` or ``!deleting``."""

    key: str
    op: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Negative operators match resources without the key, as in Kubernetes' set-based
        # selectors that the Hetzner syntax is modelled on (apimachinery labels/selector.go).
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A parsed selector: every requirement must hold (comma means AND)."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise LabelError(f"invalid label selector {text!r}: unexpected {text[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def fail(self, what: str) -> LabelError:
        return LabelError(
            f"invalid label selector {self.text!r}: {what}",
            hint="see https://docs.hetzner.cloud/#label-selector",
        )

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end")
        self.pos += 1
        return token

    def word(self, what: str) -> str:
        token = self.take()
        if token in ("==", "!=", "=", "(", ")", ",", "!"):
            raise self.fail(f"expected {what}, got {token!r}")
        return token

    def key(self) -> str:
        key = self.word("a label key")
        if (problem := _key_problem(key)) is not None:
            raise self.fail(problem)
        return key

    def value(self, key: str) -> str:
        token = self.peek()
        if token in (",", ")", None):
            return ""  # ``k=`` selects the empty value, which is a valid label value
        value = self.word("a label value")
        if (problem := _value_problem(key, value)) is not None:
            raise self.fail(problem)
        return value

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.key(), "!exists")
        key = self.key()
        token = self.peek()
        if token in (None, ","):
            return Requirement(key, "exists")
        token = self.take()
        if token in ("=", "=="):
            return Requirement(key, "=", (self.value(key),))
        if token == "!=":
            return Requirement(key, "!=", (self.value(key),))
        if token in ("in", "notin"):
            if self.take() != "(":
                raise self.fail(f"expected '(' after {token!r}")
            values = [self.value(key)]
            while (sep := self.take()) == ",":
                values.append(self.value(key))
            if sep != ")":
                raise self.fail(f"expected ')' to close the value set, got {sep!r}")
            return Requirement(key, "in" if token == "in" else "notin", tuple(values))
        raise self.fail(f"unexpected {token!r} after key {key!r}")

    def selector(self) -> Selector:
        requirements = [self.requirement()]
        while self.peek() is not None:
            if self.take() != ",":
                raise self.fail("requirements must be separated by ','")
            requirements.append(self.requirement())
        return Selector(tuple(requirements))


def parse_selector(text: str) -> Selector:
    """Parse a Hetzner label selector; raise ``LabelError`` with the reason when it is invalid.

    ``parse_selector("env=prod,type!=db").matches({"env": "prod"}) is True``. An empty selector
    matches everything, as an absent ``label_selector`` query parameter does.
    """
    if text.strip() == "":
        return Selector(())
    return _Parser(text).selector()


def match_selector(selector: str | Selector, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector`` (given as text or parsed)."""
    parsed = parse_selector(selector) if isinstance(selector, str) else selector
    return parsed.matches(labels)


def format_selector(labels: Mapping[str, str]) -> str:
    """The equality selector for a label set, keys sorted: ``{"b": "2", "a": "1"}`` -> ``a=1,b=2``.

    Raises ``LabelError`` when a key or value could not appear in a selector.
    """
    validate_labels(labels)
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))
