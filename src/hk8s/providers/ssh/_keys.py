"""Ephemeral ed25519 key pairs for one image build (design.md section 5).

The private key only ever lives in memory: it is generated for one build, its public half is
registered with Hetzner (``POST /ssh_keys`` takes the OpenSSH one-line form) so the rescue
system accepts it, and both are dropped with the build. Nothing is written to disk.

>>> pair = generate_ed25519_key("hk8s-build-demo-amd64")
>>> pair.public_openssh.startswith("ssh-ed25519 ")
True
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["SSHKeyPair", "generate_ed25519_key"]


@dataclass(frozen=True, repr=False)
class SSHKeyPair:
    """An in-memory key pair. ``repr`` shows the fingerprint only, never key material."""

    public_openssh: str
    _private: Ed25519PrivateKey = field(compare=False)

    @property
    def fingerprint_md5(self) -> str:
        """``aa:bb:...``: the form Hetzner reports as an SSH key's ``fingerprint``."""
        blob = base64.b64decode(self.public_openssh.split()[1])
        digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    @property
    def fingerprint_sha256(self) -> str:
        """``SHA256:...``: the form ``ssh-keygen -l`` prints."""
        blob = base64.b64decode(self.public_openssh.split()[1])
        encoded = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return f"SHA256:{encoded}"

    def paramiko_key(self) -> paramiko.PKey:
        """The private key as paramiko wants it (through the OpenSSH private-key format)."""
        text = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
        return paramiko.Ed25519Key.from_private_key(io.StringIO(text))

    def __repr__(self) -> str:
        return f"SSHKeyPair(ed25519 {self.fingerprint_sha256})"


def generate_ed25519_key(comment: str = "hk8s") -> SSHKeyPair:
    """A fresh ed25519 key pair whose public half carries ``comment`` (e.g. the build name)."""
    private = Ed25519PrivateKey.generate()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    suffix = f" {comment}" if comment else ""
    return SSHKeyPair(public_openssh=public + suffix, _private=private)
