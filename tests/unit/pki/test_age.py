"""age encryption as talos-backup writes it (the oracle in tests/oracles/age compares with
filippo.io/age); here: what a user gets for a wrong key, a typo or a damaged backup."""

from __future__ import annotations

import pytest

from hk8s.pki.age import AgeError, decrypt, encrypt, generate_identity, parse_recipient


def test_a_backup_opens_with_its_identity_only() -> None:
    mine, other = generate_identity(), generate_identity()
    sealed = encrypt(b"etcd snapshot", [mine.recipient])
    assert decrypt(sealed, [other, mine]) == b"etcd snapshot"
    with pytest.raises(AgeError, match="no identity matches"):
        decrypt(sealed, [other])


def test_a_truncated_backup_is_refused() -> None:
    identity = generate_identity()
    sealed = encrypt(bytes(200_000), [identity.recipient])
    # cut at a chunk boundary: the remaining chunks all authenticate, but none is the last
    header_end = sealed.index(b"\n", sealed.index(b"--- ")) + 1
    cut = sealed[: header_end + 16 + 2 * (64 * 1024 + 16)]
    with pytest.raises(AgeError, match="truncated or altered"):
        decrypt(cut, [identity])


def test_a_recipient_with_a_typo_is_refused() -> None:
    recipient = generate_identity().recipient
    typo = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")
    with pytest.raises(AgeError, match="checksum"):
        parse_recipient(typo)
    with pytest.raises(AgeError, match="X25519 public key"):
        parse_recipient(str(generate_identity()))  # the secret key where the public one goes


def test_the_identitys_repr_never_shows_the_secret() -> None:
    identity = generate_identity()
    assert str(identity) not in repr(identity)
    assert str(identity).startswith("AGE-SECRET-KEY-1")
