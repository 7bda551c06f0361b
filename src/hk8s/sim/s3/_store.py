"""An S3-compatible object store on loopback: where the simulated cluster's backups land.

It plays Hetzner Object Storage (or any S3 endpoint) for talos-backup's pod in the simulated
cluster and for ``hk8s etcd backups`` / ``restore --from s3://``. What it serves follows the
Amazon S3 API reference, path-style (``/<bucket>/<key>``):

- ``PUT /<bucket>`` CreateBucket; ``PUT``/``GET``/``HEAD``/``DELETE /<bucket>/<key>`` objects
  (DeleteObject answers 204 whether or not the key existed, as S3 does);
- ``GET /<bucket>?list-type=2`` ListObjectsV2 with ``prefix``, ``start-after``, ``max-keys``
  (1..1000) and ``continuation-token`` (opaque, base64 of the last key), keys in UTF-8 byte
  order, ``KeyCount``/``IsTruncated``/``NextContinuationToken``;
- every request authenticated with Signature Version 4 (``Authorization`` header): the access
  key must exist (403 InvalidAccessKeyId), the signature must match what the secret gives for
  the request as received (403 SignatureDoesNotMatch), and a signed payload hash must match
  the body (400 XAmzContentSHA256Mismatch); ``UNSIGNED-PAYLOAD`` is accepted as S3 does;
- errors as S3's XML ``<Error><Code>..</Code><Message>..</Message>..</Error>``.

Not served (docs/simulator.md): virtual-hosted-style addressing (nothing resolves
``<bucket>.127.x.y.z`` here), presigned URLs, aws-chunked streaming uploads, multipart
uploads, ``delimiter``, versioning, and RequestTimeTooSkewed (the world's clock runs scaled,
clients sign with their own).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from hk8s.pki.sigv4 import ALGORITHM, signature
from hk8s.sim._http import HTTPServer, Request, Response

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

__all__ = ["S3Object", "S3Store"]

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_AUTH = re.compile(
    rf"^{ALGORITHM} Credential=(?P<key>[^/]+)/(?P<date>\d{{8}})/(?P<region>[^/]+)/s3/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)
_UNSIGNED = "UNSIGNED-PAYLOAD"
_MESSAGES = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket "
                                     "succeeded and you already own it."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our "
                                "records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NotImplemented": (501, "A header you provided implies functionality that is not "
                            "implemented"),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the "
                                   "signature you provided. Check your key and signing method."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not "
                                       "match what was computed."),
}  # fmt: skip


@dataclass(frozen=True)
class S3Object:
    data: bytes
    last_modified: dt.datetime
    content_type: str = "binary/octet-stream"

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data, usedforsecurity=False).hexdigest() + '"'


class _S3Error(Exception):
    def __init__(self, code: str, **extra: str) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class S3Store:
    """Buckets of objects behind one SigV4-checked HTTP endpoint.

    ``now`` gives the store's time (the world's scaled UTC clock); ``credentials`` maps access
    key ids to secrets. Requests and their outcome are counted in ``requests`` for tests.
    """

    now: Callable[[], dt.datetime]
    credentials: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, dict[str, S3Object]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    _server: HTTPServer | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def serve(self, host: str, port: int = 0) -> str:
        self._server = await HTTPServer(self.handle).start(host, port)
        return self._server.url

    @property
    def url(self) -> str:
        assert self._server is not None, "the store is not serving"
        return self._server.url

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    def objects(self, bucket: str, prefix: str = "") -> dict[str, S3Object]:
        """The objects under ``prefix`` (for tests and the world's own checks)."""
        return {k: v for k, v in sorted(self.buckets.get(bucket, {}).items())
                if k.startswith(prefix)}  # fmt: skip

    # ------------------------------------------------------------------ HTTP
    async def handle(self, request: Request) -> Response:
        try:
            response = self._dispatch(request)
        except _S3Error as exc:
            response = self._error(exc, request)
        self.requests.append((request.method, request.path, response.status))
        return response

    def _error(self, exc: _S3Error, request: Request) -> Response:
        status, message = _MESSAGES[exc.code]
        extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in exc.extra.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{exc.code}</Code><Message>{escape(message)}</Message>{extra}"
            f"<Resource>{escape(request.path)}</Resource>"
            f"<RequestId>{next(self._ids):016X}</RequestId></Error>"
        )
        body_bytes = b"" if request.method == "HEAD" else body.encode()
        return Response(status, body_bytes, {"Content-Type": "application/xml"})

    def _dispatch(self, request: Request) -> Response:
        self._authenticate(request)
        bucket, _, key = unquote(request.path).lstrip("/").partition("/")
        if not bucket:
            raise _S3Error("MethodNotAllowed")  # ListBuckets is not served
        if not key:
            if request.method == "PUT":
                return self._create_bucket(bucket)
            if request.method == "GET" and request.param("list-type") == "2":
                return self._list(bucket, request)
            raise _S3Error("NotImplemented")
        objects = self.buckets.get(bucket)
        if objects is None:
            raise _S3Error("NoSuchBucket", BucketName=bucket)
        if request.method == "PUT":
            if request.headers.get_header("x-amz-copy-source"):
                raise _S3Error("NotImplemented")
            kind = request.headers.get_header("content-type") or "binary/octet-stream"
            obj = S3Object(request.body, self.now(), kind)
            objects[key] = obj
            return Response(200, b"", {"ETag": obj.etag})
        if request.method == "DELETE":
            objects.pop(key, None)
            return Response(204)
        if request.method in ("GET", "HEAD"):
            found = objects.get(key)
            if found is None:
                raise _S3Error("NoSuchKey", Key=key)
            headers = {
                "ETag": found.etag,
                "Last-Modified": format_datetime(found.last_modified, usegmt=True),
                "Content-Type": found.content_type,
            }
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(found.data))
                return Response(200, b"", headers)
            return Response(200, found.data, headers)
        raise _S3Error("MethodNotAllowed")

    def _create_bucket(self, bucket: str) -> Response:
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise _S3Error("InvalidBucketName", BucketName=bucket)
        if bucket in self.buckets:
            raise _S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
        self.buckets[bucket] = {}
        return Response(200, b"", {"Location": f"/{bucket}"})

    def _list(self, bucket: str, request: Request) -> Response:
        objects = self.buckets.get(bucket)
        if objects is None:
            raise _S3Error("NoSuchBucket", BucketName=bucket)
        if request.param("delimiter"):
            raise _S3Error("NotImplemented")
        prefix = request.param("prefix") or ""
        max_text = request.param("max-keys") or "1000"
        if not max_text.isdigit():
            raise _S3Error("InvalidArgument", ArgumentName="max-keys", ArgumentValue=max_text)
        max_keys = min(int(max_text), 1000)
        after = request.param("start-after") or ""
        token = request.param("continuation-token")
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _S3Error("InvalidArgument", ArgumentName="continuation-token") from None
        keys = sorted(
            (k for k in objects if k.startswith(prefix) and k.encode() > after.encode()),
            key=str.encode,
        )
        page, truncated = keys[:max_keys], len(keys) > max_keys
        parts = [
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{_NS}">',
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if token is not None:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if truncated:
            last = base64.urlsafe_b64encode(page[-1].encode()).decode()
            parts.append(f"<NextContinuationToken>{last}</NextContinuationToken>")
        for key in page:
            obj = objects[key]
            modified = obj.last_modified.strftime("%Y-%m-%dT%H:%M:%S.") + (
                f"{obj.last_modified.microsecond // 1000:03d}Z"
            )
            parts.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
                f"<ETag>{escape(obj.etag)}</ETag><Size>{len(obj.data)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.append("</ListBucketResult>")
        return Response(200, "".join(parts).encode(), {"Content-Type": "application/xml"})

    # ------------------------------------------------------------------ SigV4
    def _authenticate(self, request: Request) -> None:
        header = request.headers.get_header("authorization")
        if not header:
            raise _S3Error("AccessDenied")
        match = _AUTH.match(header)
        if match is None:
            raise _S3Error("AuthorizationHeaderMalformed")
        secret = self.credentials.get(match["key"])
        if secret is None:
            raise _S3Error("InvalidAccessKeyId", AWSAccessKeyId=match["key"])
        amz_date = request.headers.get_header("x-amz-date")
        payload = request.headers.get_header("x-amz-content-sha256")
        signed = match["signed"].split(";")
        if not amz_date.startswith(match["date"]) or "host" not in signed or not payload:
            raise _S3Error("AuthorizationHeaderMalformed")
        if payload.startswith("STREAMING-"):
            raise _S3Error("NotImplemented")
        if payload != _UNSIGNED and payload != hashlib.sha256(request.body).hexdigest():
            raise _S3Error("XAmzContentSHA256Mismatch")
        missing = [name for name in signed if name not in request.headers]
        if missing:
            raise _S3Error("SignatureDoesNotMatch")
        raw_query = urlsplit(request.target).query
        query = [
            (unquote(k), unquote(v))
            for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)
        ]
        expected = signature(
            request.method, request.path, query, request.headers, signed, payload,
            secret=secret, amz_date=amz_date, region=match["region"],
        )  # fmt: skip
        if not hmac.compare_digest(expected, match["sig"]):
            raise _S3Error("SignatureDoesNotMatch", AWSAccessKeyId=match["key"])
