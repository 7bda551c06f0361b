"""What the world's build scripts share (kube_build.py, helm_build.py): a build from pinned Go
modules into ``~/.cache/hk8s/<kind>/<release>/``, stamped with the go.mod/go.sum files it came
from, so that a changed pin rebuilds and an unchanged one costs nothing."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
STAMP = ".built-from"


def pinned(gomod: Path, module: str) -> str:
    """The version ``gomod`` requires of ``module``."""
    pattern = rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)"
    match = re.search(pattern, gomod.read_text(), re.M)
    if not match:
        raise SystemExit(f"{gomod.relative_to(ROOT)} does not require {module}")
    return match[1]


def cache_dir(kind: str, release: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hk8s" / kind / release


def stamp(files: Sequence[Path]) -> str:
    return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest() + "\n"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def go() -> str:
    found = shutil.which("go")
    if found is None:
        raise SystemExit("go is not on PATH: the world's upstream components are built with Go")
    return found


def build_once(
    out: Path, sources: Sequence[Path], expect: Sequence[str], make: Callable[[Path], None]
) -> Path:
    """``out``, made by ``make(folder)`` unless it holds ``expect`` built from ``sources``
    as they are; a build that stops half-way leaves ``out`` as it was."""
    wanted = stamp(sources)
    built = out / STAMP
    if built.exists() and built.read_text() == wanted and all((out / n).exists() for n in expect):
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    make(tmp)
    (tmp / STAMP).write_text(wanted)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(build: Callable[[], Path], output_dir: Callable[[], Path]) -> None:
    if sys.argv[1:] == ["--print"]:
        say(str(output_dir()))
    else:
        build()
