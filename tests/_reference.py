"""Where the upstream reference data lives: ``shared/reference`` beside the repository.

CI clones the repository with ``shared/`` next to it; ``HK8S_REFERENCE_DIR`` overrides. The
conformance tests need this data, so a missing directory fails loudly instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REFERENCE"]


def _find() -> Path:
    override = os.environ.get("HK8S_REFERENCE_DIR")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[1]
    for parent in (repo, *repo.parents):
        candidate = parent / "shared" / "reference"
        if candidate.is_dir():
            return candidate
    raise RuntimeError(
        f"shared/reference not found beside {repo}: clone the repository next to shared/, "
        "or set HK8S_REFERENCE_DIR"
    )


REFERENCE = _find()
