"""age (age-encryption.org/v1) with X25519 recipients, as talos-backup encrypts etcd snapshots.

talos-backup encrypts each snapshot to ``AGE_X25519_PUBLIC_KEY`` with filippo.io/age
(``pkg/encryption/encryption.go``); ``hk8s etcd restore --from s3://...`` decrypts it with the
matching ``AGE-SECRET-KEY-1...`` identity, and the simulator encrypts as the real pod would.
Written here on ``cryptography`` (X25519, HKDF-SHA-256, ChaCha20-Poly1305, HMAC) rather than
taken as a dependency: the PyPI ``age`` package has had no release since 2023 and the format is
small and frozen. The spec (C2SP age.md) in short:

- header: ``age-encryption.org/v1``, one stanza per recipient (``-> X25519 <share>`` and the
  wrapped 16-byte file key, base64 without padding in 64-column lines), then ``--- <mac>``,
  an HMAC-SHA-256 of the header under ``HKDF(file key, "", "header")``;
- X25519 stanza: ephemeral share ``e·G``, wrap key ``HKDF(e·R, share || R,
  "age-encryption.org/v1/X25519")``, file key sealed with ChaCha20-Poly1305 and a zero nonce;
- payload: a 16-byte nonce, then 64 KiB chunks sealed under ``HKDF(file key, nonce,
  "payload")`` with the nonce ``counter (11 bytes, big-endian) || last-chunk flag``.

Checked against filippo.io/age itself by ``tests/oracles/age`` (both directions).

>>> identity = generate_identity()
>>> decrypt(encrypt(b"snapshot", [identity.recipient]), [identity]) == b"snapshot"
True
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hk8s.model.bech32 import bech32_decode, bech32_encode

__all__ = [
    "AgeError",
    "AgeIdentity",
    "decrypt",
    "encrypt",
    "generate_identity",
    "parse_identity",
    "parse_recipient",
]

_INTRO = b"age-encryption.org/v1\n"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_CHUNK = 64 * 1024
_TAG = 16
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw


class AgeError(ValueError):
    """A key that is not an age X25519 key, or a file that does not decrypt."""


@dataclass(frozen=True)
class AgeIdentity:
    """An X25519 identity (``AGE-SECRET-KEY-1...``) and its recipient (``age1...``)."""

    secret: bytes

    @property
    def recipient(self) -> str:
        public = X25519PrivateKey.from_private_bytes(self.secret).public_key()
        return bech32_encode("age", public.public_bytes(_RAW, _RAW_PUB))

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-", self.secret).upper()

    def __repr__(self) -> str:
        return f"AgeIdentity(recipient={self.recipient!r})"  # never the secret


def generate_identity() -> AgeIdentity:
    key = X25519PrivateKey.generate()
    return AgeIdentity(key.private_bytes(_RAW, _RAW_PRIV, serialization.NoEncryption()))


def parse_recipient(text: str) -> bytes:
    """``age1...`` -> the 32-byte X25519 public key; ``AgeError`` saying what is wrong."""
    try:
        hrp, data = bech32_decode(text.strip())
    except ValueError as exc:
        raise AgeError(f"not an age public key: {exc}") from exc
    if hrp != "age" or len(data) != 32:
        raise AgeError("not an age X25519 public key (age1..., as age-keygen prints it)")
    return data


def parse_identity(text: str) -> list[AgeIdentity]:
    """The identities in an identity file (``age-keygen`` output: comments, one key a line)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            hrp, data = bech32_decode(line)
        except ValueError as exc:
            raise AgeError(f"not an age identity: {exc}") from exc
        if hrp != "age-secret-key-" or len(data) != 32:
            raise AgeError("not an age X25519 identity (AGE-SECRET-KEY-1...)")
        found.append(AgeIdentity(data))
    if not found:
        raise AgeError("no AGE-SECRET-KEY-1... identity found")
    return found


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    # Canonical unpadded base64 only, as age requires.
    if text.endswith(b"=") or b"\r" in text:
        raise AgeError("malformed header: padded base64")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise AgeError("malformed header: bad base64") from exc
    if _b64(data) != text:
        raise AgeError("malformed header: non-canonical base64")
    return data


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _wrap_lines(data: bytes) -> bytes:
    encoded = _b64(data)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append(b"")  # the body always ends with a line shorter than 64 columns
    return b"\n".join(lines) + b"\n"


def _x25519_stanza(file_key: bytes, recipient: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes(_RAW, _RAW_PUB)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    wrap_key = _hkdf(shared, share + recipient, _X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(b"\x00" * 12, file_key, None)
    return b"-> X25519 " + _b64(share) + b"\n" + _wrap_lines(body)


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(plaintext: bytes, recipients: list[str]) -> bytes:
    """Encrypt to each ``age1...`` recipient (the binary format, as ``age -r`` writes it)."""
    if not recipients:
        raise AgeError("no recipients")
    file_key = os.urandom(16)
    header = _INTRO + b"".join(_x25519_stanza(file_key, parse_recipient(r)) for r in recipients)
    header += b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
    nonce = os.urandom(16)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    chunks = [plaintext[i : i + _CHUNK] for i in range(0, len(plaintext), _CHUNK)] or [b""]
    body = b"".join(
        aead.encrypt(_chunk_nonce(i, i == len(chunks) - 1), chunk, None)
        for i, chunk in enumerate(chunks)
    )
    return header + b" " + _b64(mac) + b"\n" + nonce + body


def _parse_header(data: bytes) -> tuple[list[tuple[list[bytes], bytes]], bytes, bytes, bytes]:
    """(stanzas as (args, body), the header bytes the MAC covers, the MAC, the rest)."""
    if not data.startswith(_INTRO):
        raise AgeError("not an age file (no age-encryption.org/v1 header)")
    pos = len(_INTRO)
    stanzas: list[tuple[list[bytes], bytes]] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise AgeError("truncated header")
        line = data[pos:end]
        if line.startswith(b"--- "):
            mac = _unb64(line[4:])
            return stanzas, data[: pos + 3], mac, data[end + 1 :]
        if not line.startswith(b"-> "):
            raise AgeError("malformed header: expected a stanza or the MAC line")
        args = line[3:].split(b" ")
        pos = end + 1
        body = b""
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                raise AgeError("truncated header")
            chunk = data[pos:end]
            pos = end + 1
            if len(chunk) > 64:
                raise AgeError("malformed header: stanza line longer than 64 columns")
            body += chunk
            if len(chunk) < 64:
                break
        stanzas.append((args, _unb64(body)))


def _unwrap(stanzas: list[tuple[list[bytes], bytes]], identities: list[AgeIdentity]) -> bytes:
    for args, body in stanzas:
        if not args or args[0] != b"X25519":
            continue
        if len(args) != 2 or len(body) != 32:
            raise AgeError("malformed X25519 stanza")
        share = _unb64(args[1])
        if len(share) != 32:
            raise AgeError("malformed X25519 stanza")
        for identity in identities:
            secret = X25519PrivateKey.from_private_bytes(identity.secret)
            try:
                shared = secret.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError as exc:  # an all-zero shared secret (low-order point)
                raise AgeError("X25519 stanza with a low-order share") from exc
            recipient = secret.public_key().public_bytes(_RAW, _RAW_PUB)
            wrap_key = _hkdf(shared, share + recipient, _X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(b"\x00" * 12, body, None)
            except InvalidTag:
                continue
    raise AgeError("no identity matches any of the file's recipients")


def decrypt(data: bytes, identities: list[AgeIdentity]) -> bytes:
    """Decrypt an age file; ``AgeError`` if no identity fits or anything was tampered with."""
    stanzas, covered, mac, rest = _parse_header(data)
    file_key = _unwrap(stanzas, identities)
    expected = hmac.new(_hkdf(file_key, b"", b"header"), covered, sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise AgeError("header MAC does not match: the file was altered")
    if len(rest) < 16 + _TAG:
        raise AgeError("truncated payload")
    aead = ChaCha20Poly1305(_hkdf(file_key, rest[:16], b"payload"))
    payload = rest[16:]
    out = []
    sealed = _CHUNK + _TAG
    count = max(1, -(-len(payload) // sealed))
    for i in range(count):
        chunk = payload[i * sealed : (i + 1) * sealed]
        last = i == count - 1
        try:
            plain = aead.decrypt(_chunk_nonce(i, last), chunk, None)
        except InvalidTag as exc:
            raise AgeError("payload does not authenticate: truncated or altered") from exc
        if last and not plain and i > 0:
            raise AgeError("payload ends with an empty chunk")
        out.append(plain)
    return b"".join(out)
