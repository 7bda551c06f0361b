"""hk8s' S3 client against the simulator's object store: each side checks the other's SigV4
(both are judged by botocore in tests/unit/pki/test_sigv4.py), pagination, errors."""

from __future__ import annotations

import datetime as dt
import urllib.request
from typing import TYPE_CHECKING

import pytest

from hk8s.errors import AuthError, NotFoundError
from hk8s.model import ManualClock
from hk8s.pki.sigv4 import Credentials
from hk8s.providers.s3 import S3Client
from hk8s.sim.s3 import S3Object, S3Store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
CREDS = Credentials("HK8SKEY", "s3cr3t/with+chars")


@pytest.fixture
async def store() -> AsyncIterator[S3Store]:
    store = S3Store(now=lambda: NOW, credentials={CREDS.access_key_id: CREDS.secret_access_key})
    store.buckets["backups"] = {}
    await store.serve("127.0.0.1")
    try:
        yield store
    finally:
        await store.close()


def client(store: S3Store, creds: Credentials = CREDS) -> S3Client:
    return S3Client(store.url, "fsn1", creds, clock=ManualClock(),
                    credentials_source="AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")  # fmt: skip


async def test_put_list_get_delete(store: S3Store) -> None:
    s3 = client(store)
    await s3.put_object("backups", "demo/a b+c.snap.age", b"one")
    await s3.put_object("backups", "other/x", b"two")
    [listed] = await s3.list_objects("backups", "demo/")
    assert (listed.key, listed.size, listed.last_modified) == ("demo/a b+c.snap.age", 3, NOW)
    assert await s3.get_object("backups", "demo/a b+c.snap.age") == b"one"
    await s3.delete_object("backups", "demo/a b+c.snap.age")
    await s3.delete_object("backups", "demo/a b+c.snap.age")  # already gone: fine, as S3
    assert await s3.list_objects("backups", "demo/") == []


async def test_listing_follows_continuation_tokens(store: S3Store) -> None:
    store.buckets["backups"] = {f"demo/{i:04d}": S3Object(b"x", NOW) for i in range(2500)}
    found = await client(store).list_objects("backups", "demo/")
    assert [o.key for o in found] == [f"demo/{i:04d}" for i in range(2500)]
    lists = [r for r in store.requests if r[0] == "GET"]
    assert len(lists) == 3  # 1000 keys a page


async def test_a_missing_key_is_not_found(store: S3Store) -> None:
    with pytest.raises(NotFoundError, match="NoSuchKey"):
        await client(store).get_object("backups", "demo/nothing")
    with pytest.raises(NotFoundError, match="NoSuchBucket"):
        await client(store).list_objects("elsewhere")


async def test_a_wrong_secret_fails_the_signature_check(store: S3Store) -> None:
    with pytest.raises(AuthError, match="SignatureDoesNotMatch") as info:
        await client(store, Credentials(CREDS.access_key_id, "wrong")).list_objects("backups")
    assert "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in (info.value.hint or "")
    with pytest.raises(AuthError, match="InvalidAccessKeyId"):
        await client(store, Credentials("NOPE", "x")).list_objects("backups")


async def test_the_store_refuses_unsigned_and_altered_requests(store: S3Store) -> None:
    def status(request: urllib.request.Request) -> int:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    import asyncio
    import hashlib

    from hk8s.pki.sigv4 import sign

    url = f"{store.url}/backups/demo/key"
    assert await asyncio.to_thread(status, urllib.request.Request(url)) == 403
    body = b"payload"
    headers = sign("PUT", url, {}, hashlib.sha256(body).hexdigest(), CREDS, region="fsn1",
                   now=NOW)  # fmt: skip
    altered = urllib.request.Request(url, data=b"PAYLOAD", method="PUT", headers=headers)
    assert await asyncio.to_thread(status, altered) == 400  # XAmzContentSHA256Mismatch
    other_key = urllib.request.Request(url + "2", data=body, method="PUT", headers=headers)
    assert await asyncio.to_thread(status, other_key) == 403  # SignatureDoesNotMatch
    assert store.objects("backups") == {}
