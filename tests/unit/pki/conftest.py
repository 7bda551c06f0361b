from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

import _reference
from hk8s.pki import CertAndKey, KeyAlgorithm, SecretsBundle, create_ca, generate_secrets

if TYPE_CHECKING:
    from pathlib import Path

REFERENCE = _reference.REFERENCE / "talos"
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def now() -> dt.datetime:
    return NOW


@pytest.fixture(scope="session")
def os_ca() -> CertAndKey:
    return create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=NOW)


@pytest.fixture(scope="session")
def k8s_ca() -> CertAndKey:
    return create_ca(algorithm=KeyAlgorithm.ECDSA_P256, organization="kubernetes", now=NOW)


@pytest.fixture(scope="session")
def example_secrets_path() -> Path:
    return REFERENCE / "secrets.example.yaml"


@pytest.fixture(scope="session")
def bundle() -> SecretsBundle:
    """One generated bundle per session: RSA-4096 generation is the slow part."""
    return generate_secrets(NOW)
