"""AWS Signature Version 4 for S3-compatible object storage (Hetzner Object Storage, AWS, MinIO).

``hk8s etcd backups`` and ``restore --from s3://`` make a handful of S3 calls (list, get,
delete); the simulator's object store checks the same signatures. A full AWS SDK (boto3,
~100 MB with botocore's service data) would be the heaviest dependency hk8s has, for four
requests; the signing is one HMAC chain, so it lives here and is checked against botocore's
own signer (a development-only dependency, tests/unit/pki/test_sigv4.py).

The algorithm (AWS "Create a signed AWS API request"): a canonical request (method, URI-encoded
path, sorted query, sorted lower-cased headers, signed header names, payload SHA-256), the
string to sign (algorithm, time, scope ``date/region/s3/aws4_request``, hash of the canonical
request), and an HMAC-SHA-256 under a key derived from the secret through date, region, service
and ``aws4_request``. S3 does not normalise or double-encode the path.

>>> headers = sign("GET", "https://fsn1.your-objectstorage.com/bucket/key", {}, EMPTY_SHA256,
...                Credentials("AKID", "secret"), region="fsn1", now=now)
>>> headers["Authorization"]
'AWS4-HMAC-SHA256 Credential=AKID/20261207/fsn1/s3/aws4_request, SignedHeaders=host;x-amz-...'
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Mapping

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "Credentials",
    "canonical_query",
    "canonical_uri",
    "sign",
    "signature",
]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-_.~"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=<redacted>)"


def canonical_uri(path: str) -> str:
    """The path URI-encoded once (``/`` kept), from either a raw or an encoded path."""
    return quote(unquote(path or "/"), safe="/" + _UNRESERVED)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((quote(k, safe=_UNRESERVED), quote(v, safe=_UNRESERVED)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_sha256: str,
    *,
    secret: str,
    amz_date: str,
    region: str,
    service: str = "s3",
) -> str:
    """The hex signature of a request; ``headers`` keyed by lower-case name."""
    canonical_headers = "".join(
        f"{name}:{' '.join(headers[name].split())}\n" for name in signed_headers
    )
    request = "\n".join(
        [
            method,
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_sha256,
        ]
    )
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    return hmac.new(
        _key(secret, date, region, service), to_sign.encode(), hashlib.sha256
    ).hexdigest()


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    *,
    region: str,
    now: dt.datetime,
) -> dict[str, str]:
    """``headers`` plus Host, X-Amz-Date, X-Amz-Content-Sha256 and Authorization."""
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    out = {
        **headers,
        "Host": parts.netloc,
        "X-Amz-Date": amz_date,
        "X-Amz-Content-Sha256": payload_sha256,
    }
    lower = {k.lower(): v for k, v in out.items()}
    signed = sorted(lower)
    query = [
        (unquote(k), unquote(v))
        for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)
    ]
    sig = signature(
        method, parts.path, query, lower, signed, payload_sha256,
        secret=credentials.secret_access_key, amz_date=amz_date, region=region,
    )  # fmt: skip
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return out
