"""Loading cluster.yaml: YAML with marks -> model, every problem collected with its place.

Errors are gathered in three passes that each see the whole file: YAML structure (syntax,
duplicate keys), field validation (pydantic, all errors at once), and cross-section rules run
on whichever sections are valid. The user gets one list, sorted by line.
"""

from __future__ import annotations

import stat
import types
import typing
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from hk8s.config._checks import Sections, cross_check
from hk8s.config._cluster import ClusterConfig, sections_of
from hk8s.config._fields import did_you_mean
from hk8s.config._model import DEFER_CHECKS
from hk8s.config._yaml import Located, format_path, load_yaml
from hk8s.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    import os

    from pydantic_core import ErrorDetails

    from hk8s.config._checks import Finding
    from hk8s.config._yaml import Path

__all__ = ["load_config", "parse_config"]

_MINIMAL = "a minimal config is:  name: demo  /  location: fsn1"
_TOKEN_HINT = (
    "remove this key and export HCLOUD_TOKEN=<token> (or pass --token); "
    "config files get committed and shared, tokens must not"
)


def load_config(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and validate a cluster.yaml file.

    >>> load_config("configs/dev.yaml").name
    'dev'
    """
    source = str(path)
    try:
        text = _read_text(FsPath(path))
    except FileNotFoundError:
        raise _file_error(source, "file not found", "check the path given with -f") from None
    except UnicodeDecodeError as exc:
        raise _file_error(source, f"not UTF-8 text: {exc.reason}", "save it as UTF-8") from None
    except OSError as exc:
        raise _file_error(source, f"cannot read: {exc.strerror}", None) from None
    return parse_config(text, source)


def parse_config(text: str, source: str = "<string>") -> ClusterConfig:
    """Validate cluster.yaml text; ``source`` names it in messages.

    Raises ``ConfigError`` listing every problem, each with its YAML path and line:column.
    """
    located = load_yaml(text)
    problems = list(located.problems)
    if located.data is None and not problems:
        problems.append(ConfigProblem("(root)", "the file is empty", 1, 1, _MINIMAL))
    elif located.data is not None and not isinstance(located.data, dict):
        line, column = located.mark(()) or (None, None)
        problems.append(
            ConfigProblem(
                "(root)",
                f"expected a mapping of keys at the top level, got {_describe(located.data)}",
                line,
                column,
                _MINIMAL,
            )
        )
    if problems:
        raise ConfigError(source, _sorted(problems))

    config: ClusterConfig | None = None
    try:
        config = ClusterConfig.model_validate(located.data, context={DEFER_CHECKS: True})
    except ValidationError as exc:
        problems.extend(_from_pydantic(error, located) for error in exc.errors(include_url=False))
    sections = sections_of(config) if config else Sections.partial(located.data)
    problems.extend(_from_finding(f, located) for f in cross_check(sections))
    if problems:
        raise ConfigError(source, _sorted(problems))
    assert config is not None
    return config


# cluster.yaml is a few kilobytes; a file this large is a mistake (a log, an image, /dev/zero).
MAX_CONFIG_BYTES = 1024 * 1024


def _read_text(path: FsPath) -> str:
    """Read a regular file of bounded size: a FIFO would block forever and a device such as
    /dev/zero would fill memory before any YAML error could be reported."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "(file)",
                    "not a regular file (a directory, pipe or device)",
                    hint="pass the path of a cluster.yaml file with -f",
                )
            ],
        )
    with path.open("rb") as stream:
        data = stream.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise _file_error(
            str(path),
            f"larger than {MAX_CONFIG_BYTES // 1024} KiB; a cluster.yaml is a few kilobytes",
            "check the path given with -f",
        )
    return data.decode("utf-8")


def _file_error(source: str, message: str, hint: str | None) -> ConfigError:
    return ConfigError(source, [ConfigProblem("(file)", message, hint=hint)])


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0, p.path))


def _from_finding(finding: Finding, located: Located) -> ConfigProblem:
    line, column = located.mark(finding.path) or (None, None)
    return ConfigProblem(format_path(finding.path), finding.message, line, column, finding.hint)


def _data_path(loc: tuple[str | int, ...], data: Any) -> tuple[Path, bool]:
    """Map a pydantic ``loc`` onto the document: drop union tags, note dict-key errors."""
    path: list[str | int] = []
    is_key = False
    current = data
    for index, part in enumerate(loc):
        if part == "[key]":
            is_key = True
            continue
        child = _child(current, part)
        if child is not _ABSENT:
            current = child
        elif index < len(loc) - 1 or isinstance(part, int):
            continue  # a tag pydantic adds for unions / validators, not a key in the file
        path.append(part)
    return tuple(path), is_key


_ABSENT = object()


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _fields_at(path: Path) -> list[str]:
    """The keys the model accepts at ``path`` (for did-you-mean hints)."""
    tp: Any = ClusterConfig
    for part in path:
        tp = _unwrap(tp)
        if isinstance(part, int) or not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            args = typing.get_args(tp)
            tp = args[-1] if args else Any
        elif part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = _unwrap(members[0]) if len(members) == 1 else tp
    return tp


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _from_pydantic(error: ErrorDetails, located: Located) -> ConfigProblem:
    path, is_key = _data_path(error["loc"], located.data)
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    message, hint = _explain(kind, path, value, ctx, error["msg"])
    line, column = located.mark(path, key=is_key or kind == "extra_forbidden") or (None, None)
    return ConfigProblem(format_path(path), message, line, column, hint)


def _explain(
    kind: str, path: Path, value: Any, ctx: dict[str, Any], default: str
) -> tuple[str, str | None]:
    last = str(path[-1]) if path else ""
    if kind == "hk8s_invalid":
        return str(ctx["message"]), ctx.get("hint")
    if kind == "extra_forbidden":
        if "token" in last.lower():
            return f"{last!r}: the Hetzner API token is never read from the config", _TOKEN_HINT
        valid = _fields_at(path[:-1])
        hint = did_you_mean(last, valid) or (
            f"valid keys here: {', '.join(valid)}" if valid else None
        )
        return f"unknown key {last!r}", hint
    if kind == "missing":
        hints = {
            "name": "add e.g. `name: demo`",
            "location": "add e.g. `location: fsn1`",
            "workers.name": "give every worker pool a name, e.g. `name: workers`",
        }
        where = ".".join(str(p) for p in path if isinstance(p, str))
        return f"required key {last!r} is missing", hints.get(where, f"add `{last}: ...`")
    got = _describe(value)
    if kind == "string_type":
        hint = "put the value in quotes so YAML keeps it as text"
        if isinstance(value, float):
            hint += " (unquoted, 1.10 is read as the number 1.1)"
        return f"expected text, got {got}", hint
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {got}", "write it without quotes, e.g. 3"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}", "write true or false, without quotes"
    if kind == "list_type":
        return f"expected a list, got {got}", "write one item per line, each starting with '- '"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value), got {got}", "indent its keys under this one"
    if kind == "too_short":
        hint = "use 'current' for your own IP address" if last.endswith("sources") else None
        return "must not be empty", hint
    if kind in ("greater_than_equal", "greater_than"):
        low = ctx.get("ge", ctx.get("gt"))
        return f"{value!r} is too small", f"the minimum is {low}"
    if kind in ("less_than_equal", "less_than"):
        high = ctx.get("le", ctx.get("lt"))
        return f"{value!r} is too large", f"the maximum is {high}"
    return f"{default[0].lower()}{default[1:]}", None
