"""A small S3 client: the calls ``hk8s etcd backups`` and ``restore --from s3://`` make.

ListObjectsV2 (every page), GetObject, DeleteObject and PutObject, path-style
(``<endpoint>/<bucket>/<key>``, which Hetzner Object Storage, AWS and MinIO all serve), each
signed with SigV4 (``hk8s.pki.sigv4``). Requests go through the standard library with a
timeout; connection errors, 5xx and S3's ``SlowDown`` are retried with backoff on the
injected clock, then reported as ``UnavailableError``. S3's XML errors become hk8s errors
with S3's code and message: ``NoSuchKey``/``NoSuchBucket`` -> ``NotFoundError``, refused
credentials -> ``AuthError`` naming the variables they came from.

>>> s3 = S3Client("https://fsn1.your-objectstorage.com", "fsn1", creds, clock=SystemClock())
>>> [o.key for o in await s3.list_objects("backups", "demo/")]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote
from xml.etree import ElementTree

from hk8s.errors import AuthError, Hk8sError, NotFoundError, UnavailableError
from hk8s.pki.sigv4 import Credentials, sign

if TYPE_CHECKING:
    from hk8s.model import Clock

__all__ = ["S3Client", "StoredObject"]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_RETRIES = 4
_TIMEOUT = 60.0


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: dt.datetime


class _Retry(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _text(element: ElementTree.Element, tag: str) -> str:
    found = element.find(_NS + tag)
    if found is None:
        found = element.find(tag)
    return (found.text or "") if found is not None else ""


class S3Client:
    """S3 calls against one endpoint and region with one set of credentials."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Credentials,
        *,
        clock: Clock,
        credentials_source: str = "the configured credentials",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.credentials = credentials
        self.clock = clock
        self.source = credentials_source

    def _url(self, bucket: str, key: str = "", query: str = "") -> str:
        path = f"/{quote(bucket, safe='')}" + (f"/{quote(key, safe='/-_.~')}" if key else "")
        return self.endpoint + path + (f"?{query}" if query else "")

    def _call(self, method: str, url: str, body: bytes) -> tuple[int, bytes]:
        payload = hashlib.sha256(body).hexdigest()
        headers = sign(method, url, {}, payload, self.credentials, region=self.region,
                       now=dt.datetime.now(dt.UTC))  # fmt: skip
        request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            data = exc.read()
            if exc.code >= 500 or b"<Code>SlowDown</Code>" in data:
                raise _Retry(f"HTTP {exc.code}") from exc
            return exc.code, data
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise _Retry(str(getattr(exc, "reason", exc))) from exc

    async def _request(
        self, method: str, bucket: str, key: str = "", query: str = "", body: bytes = b""
    ) -> bytes:
        url = self._url(bucket, key, query)
        delay = 1.0
        for attempt in range(_RETRIES + 1):
            try:
                status, data = await asyncio.to_thread(self._call, method, url, body)
            except _Retry as exc:
                if attempt == _RETRIES:
                    raise UnavailableError(
                        f"S3 {method} {url} failed {_RETRIES + 1} times: {exc.why}",
                        hint="check the endpoint in cluster.yaml's backup section and the network",
                    ) from None
                await self.clock.sleep(delay)
                delay *= 2
                continue
            if status < 300:
                return data
            raise self._error(status, data, bucket, key)
        raise AssertionError("unreachable")

    def _error(self, status: int, data: bytes, bucket: str, key: str) -> Hk8sError:
        try:
            root = ElementTree.fromstring(data)
            code, message = _text(root, "Code"), _text(root, "Message")
        except ElementTree.ParseError:
            code, message = f"HTTP {status}", data[:200].decode(errors="replace")
        what = f"s3://{bucket}/{key}" if key else f"bucket {bucket}"
        if code in ("NoSuchKey", "NoSuchBucket") or status == 404:
            return NotFoundError(
                f"{what}: {code}: {message}",
                hint="`hk8s etcd backups -f <config>` lists what is stored",
            )
        if status in (401, 403):
            return AuthError(
                f"{what}: {code}: {message}",
                hint=f"check {self.source} and that the key may access the bucket",
            )
        return UnavailableError(f"{what}: {code}: {message}")

    async def list_objects(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        """Every object under ``prefix`` (all pages), in S3's key order."""
        found: list[StoredObject] = []
        token: str | None = None
        while True:
            query = "list-type=2&prefix=" + quote(prefix, safe="-_.~")
            if token:
                query += "&continuation-token=" + quote(token, safe="-_.~")
            root = ElementTree.fromstring(await self._request("GET", bucket, query=query))
            for item in [*root.findall(_NS + "Contents"), *root.findall("Contents")]:
                modified = _text(item, "LastModified").replace("Z", "+00:00")
                found.append(
                    StoredObject(
                        key=_text(item, "Key"),
                        size=int(_text(item, "Size") or 0),
                        last_modified=dt.datetime.fromisoformat(modified),
                    )
                )
            token = _text(root, "NextContinuationToken") or None
            if _text(root, "IsTruncated") != "true" or not token:
                return found

    async def get_object(self, bucket: str, key: str) -> bytes:
        return await self._request("GET", bucket, key)

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        await self._request("PUT", bucket, key, body=data)

    async def delete_object(self, bucket: str, key: str) -> None:
        await self._request("DELETE", bucket, key)
