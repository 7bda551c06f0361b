"""What every e2e module shares: how make e2e's workers split the tests.

The suite runs in pytest-xdist workers (Makefile ``E2E_WORKERS``). A module whose tests share
a module-scoped fixture (one created cluster, one control plane) keeps them on one worker
(``--dist loadgroup``): spread over workers, each would create the cluster again, and a test
that builds on an earlier one's objects (kubectl's workflows on one cluster) would find them
missing. Every other test goes to whichever worker is free.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = any(
            definition.scope in ("module", "package", "session")
            and definition.baseid  # the project's own fixtures, not a plugin's
            for name in info.names_closure
            for definition in info.name2fixturedefs.get(name, ())
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
