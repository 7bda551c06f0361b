"""YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` throws the node marks away, so an error found later by the model could
only name a path. Composing the node graph ourselves keeps each value's and each key's
line:column, keyed by its path (``("workers", 1, "count")``), and lets us reject duplicate
keys, which ``safe_load`` silently resolves to the last one.

Aliases are bounded: PyYAML shares an aliased node, and walking the graph expands every use,
so nine nested anchors of nine items ("billion laughs") would build 9**9 values and an alias
inside its own anchor (``x: &a [*a]``) would recurse forever. The walk counts the values it
builds and tracks the collections on its path, and stops with a located problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.errors import ConfigProblem

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Located", "Mark", "Path", "format_path", "load_yaml"]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

Path = tuple[str | int, ...]
Mark = tuple[int, int]

# The C parser gives the same node marks and is several times faster; fall back when absent.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# A generous cluster.yaml (9 control planes, dozens of pools with labels, taints and patches)
# has a few thousand values; anything past this is an alias bomb, not a config.
MAX_VALUES = 20_000


class _TooLarge(Exception):
    """Raised inside the walk; becomes one located problem."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class Located:
    """A parsed document plus the 1-based line:column of each value and mapping key."""

    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    def mark(self, path: Sequence[str | int], *, key: bool = False) -> Mark | None:
        """Where ``path`` is, or its nearest ancestor that exists (for missing fields)."""
        current = tuple(path)
        if key and current in self.keys:
            return self.keys[current]
        while current:
            if current in self.values:
                return self.values[current]
            current = current[:-1]
        return self.values.get(())


def format_path(path: Sequence[str | int]) -> str:
    """``("workers", 1, "count")`` -> ``workers[1].count``; the root is ``(root)``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(root)"


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str) -> Located:
    """Parse one YAML document; syntax errors become a single located problem."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        reason = exc.problem or exc.context or "invalid YAML"
        return Located(
            data=None,
            problems=[
                ConfigProblem(
                    "(yaml)",
                    f"invalid YAML: {reason}",
                    line,
                    column,
                    "check the indentation and quoting around this line",
                )
            ],
        )
    except yaml.YAMLError as exc:
        return Located(data=None, problems=[ConfigProblem("(yaml)", f"invalid YAML: {exc}")])
    finally:
        loader.dispose()
    located = Located(data=None)
    if root is None:
        return located
    try:
        located.data = _build(loader, root, (), located, _Walk())
    except _TooLarge as exc:
        return Located(data=None, problems=[exc.problem])
    return located


@dataclass
class _Walk:
    built: int = 0
    open: set[int] = field(default_factory=set)
    own: dict[int, set[int]] = field(default_factory=dict)

    def enter(self, node: yaml.Node, path: Path) -> None:
        self.built += 1
        if self.built > MAX_VALUES:
            raise _TooLarge(
                ConfigProblem(
                    format_path(path),
                    f"the document expands to more than {MAX_VALUES} values "
                    "(aliases repeated inside aliases)",
                    *_mark(node),
                    hint="write the values out, or use fewer nested aliases (*name)",
                )
            )
        if isinstance(node, yaml.CollectionNode) and id(node) in self.open:
            raise _TooLarge(
                ConfigProblem(
                    format_path(path),
                    "an alias refers to a value that contains it (a recursive alias)",
                    *_mark(node),
                    hint="an alias (*name) cannot be used inside its own anchor (&name)",
                )
            )


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, out: Located, walk: _Walk) -> Any:
    walk.enter(node, path)
    if isinstance(node, yaml.CollectionNode):
        walk.open.add(id(node))
        try:
            return _build_collection(loader, node, path, out, walk)
        finally:
            walk.open.discard(id(node))
    out.values[path] = _mark(node)
    return loader.construct_object(node, deep=True)


def _build_collection(
    loader: yaml.SafeLoader, node: yaml.CollectionNode, path: Path, out: Located, walk: _Walk
) -> Any:
    out.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        # Resolve "<<: *anchor" merge keys the way safe_load does: merged pairs come first and
        # are overridden by the mapping's own keys. Only a key written twice is a duplicate.
        # A mapping reached again through an alias is already flattened: keep its own keys.
        own = walk.own.get(id(node))
        if own is None:
            own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            walk.own[id(node)] = own
            try:
                loader.flatten_mapping(node)
            except RecursionError:
                raise _TooLarge(
                    ConfigProblem(
                        format_path(path),
                        "a merge key (<<: *name) refers to a mapping that contains it",
                        *_mark(node),
                        hint="an alias (*name) cannot be used inside its own anchor (&name)",
                    )
                ) from None
        result: dict[str, Any] = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                out.problems.append(
                    ConfigProblem(
                        format_path(path),
                        "a mapping key must be a plain string",
                        *_mark(key_node),
                        hint="use a plain name as the key",
                    )
                )
                continue
            # Every key in cluster.yaml is a name: take the text as written, so that YAML 1.1
            # turning "yes:" or "on:" into booleans cannot rename a key.
            key = str(key_node.value)
            child = (*path, key)
            if id(key_node) in own:
                if key in written:
                    first = out.keys[child]
                    out.problems.append(
                        ConfigProblem(
                            format_path(child),
                            f"duplicate key {key!r} (first defined at line {first[0]})",
                            *_mark(key_node),
                            hint="remove one of the two entries",
                        )
                    )
                    continue
                written.add(key)
            out.keys[child] = _mark(key_node)
            result[key] = _build(loader, value_node, child, out, walk)
        return result
    return [_build(loader, item, (*path, i), out, walk) for i, item in enumerate(node.value)]
