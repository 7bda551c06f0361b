"""hk8s' age (``hk8s.pki.age``) against filippo.io/age, the reference implementation.

talos-backup encrypts snapshots with filippo.io/age and an operator may decrypt a backup with
the ``age`` CLI; hk8s must read the one and write what the other reads. The oracle is built
from ``tests/oracles/age`` (go.mod pins filippo.io/age) as ``tests/oracle_support.py`` says.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hk8s.pki.age import AgeError, decrypt, encrypt, generate_identity, parse_identity
from oracle_support import build_oracle  # type: ignore[import-not-found]

HERE = Path(__file__).parent
# Empty, one byte, exactly one 64 KiB chunk (no empty chunk after it), one byte more, several.
SIZES = [0, 1, 64 * 1024, 64 * 1024 + 1, 200_000]


@pytest.fixture(scope="module")
def oracle() -> Path:
    return build_oracle(HERE, "age-oracle")


def payload(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


@pytest.mark.parametrize("size", SIZES)
def test_filippo_age_decrypts_what_hk8s_encrypts(oracle: Path, size: int) -> None:
    identity = generate_identity()
    sealed = encrypt(payload(size), [identity.recipient])
    opened = subprocess.run(
        [oracle, "decrypt", str(identity)], input=sealed, capture_output=True, check=True
    )
    assert opened.stdout == payload(size)


@pytest.mark.parametrize("size", SIZES)
def test_hk8s_decrypts_what_filippo_age_encrypts(oracle: Path, size: int) -> None:
    keys = subprocess.run([oracle, "keygen"], capture_output=True, check=True, text=True)
    secret, recipient = keys.stdout.split()
    [identity] = parse_identity(secret)
    assert identity.recipient == recipient  # the same key derivation and bech32 encoding
    sealed = subprocess.run(
        [oracle, "encrypt", recipient], input=payload(size), capture_output=True, check=True
    ).stdout
    assert decrypt(sealed, [identity]) == payload(size)


def test_a_flipped_byte_fails_in_both(oracle: Path) -> None:
    identity = generate_identity()
    sealed = bytearray(encrypt(payload(1000), [identity.recipient]))
    sealed[-5] ^= 1
    judged = subprocess.run([oracle, "decrypt", str(identity)], input=bytes(sealed),
                            capture_output=True)  # fmt: skip
    assert judged.returncode != 0
    with pytest.raises(AgeError):
        decrypt(bytes(sealed), [identity])
