"""The controller tests' fixtures; the fakes they hand out live in ``controller_support``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from controller_support import FakeKube, FakeTalos, Harness, make_intent
from hk8s.model import ManualClock
from hk8s.pki import SecretsBundle, generate_secrets, write_secrets
from hk8s.providers.hcloud.fake import FakeHcloud

if TYPE_CHECKING:
    from pathlib import Path

    from hk8s.controller import InfraIntent


@pytest.fixture(scope="session")
def bundle() -> SecretsBundle:
    """One bundle for every test: RSA-4096 generation takes about a second."""
    return generate_secrets()


@pytest.fixture
def harness(tmp_path: Path, bundle: SecretsBundle) -> Harness:
    # A new cluster with a bundle already beside its config (as after `talosctl gen secrets`).
    write_secrets(tmp_path / "secrets.yaml", bundle)
    hcloud = FakeHcloud()
    talos = FakeTalos(hcloud)
    return Harness(hcloud, talos, FakeKube(talos), tmp_path, ManualClock())


@pytest.fixture
def intent() -> InfraIntent:
    return make_intent()


@pytest.fixture
def intent_factory() -> Any:
    return make_intent


@pytest.fixture
def fake() -> FakeHcloud:
    return FakeHcloud()
