"""talos-backup's container as the world plays it: the S3 side (object naming, encryption,
v0.1.0-beta.3's inverted USE_PATH_STYLE, credentials) against the world's S3 store. The
Talos side (EtcdSnapshot with the os:etcd:backup account) is covered end to end in
tests/e2e/day2/test_backups.py."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from hk8s.pki import KeyAlgorithm, create_ca, generate_talosconfig, render_talosconfig
from hk8s.pki.age import decrypt, generate_identity
from hk8s.sim.machines import PodRun
from hk8s.sim.s3 import S3Store
from hk8s.sim.world._talos_backup import TalosBackup

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
SNAPSHOT = b"\0" * 512 * 4 + b"s" * 32  # a bbolt file's pages + etcd's SHA-256 trailer
IDENTITY = generate_identity()
OS_CA = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=NOW)
TALOSCONFIG = render_talosconfig(
    generate_talosconfig("default", OS_CA, endpoints=["talos.default"],
                         roles=["os:etcd:backup"], now=NOW)
).encode()  # fmt: skip


class Snapshotless(TalosBackup):
    """The program with a fixed snapshot instead of a Talos API call."""

    async def _snapshot(self, config: object) -> bytes:  # type: ignore[override]
        return SNAPSHOT


@pytest.fixture
async def store() -> AsyncIterator[S3Store]:
    store = S3Store(now=lambda: NOW, credentials={"AKID": "secret"})
    store.buckets["backups"] = {}
    await store.serve("127.0.0.1")
    try:
        yield store
    finally:
        await store.close()


def pod(store: S3Store, **env: str) -> PodRun:
    base = {
        "CUSTOM_S3_ENDPOINT": store.url, "BUCKET": "backups", "AWS_REGION": "fsn1",
        "CLUSTER_NAME": "demo", "AGE_X25519_PUBLIC_KEY": IDENTITY.recipient,
        "USE_PATH_STYLE": "false", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
    }  # fmt: skip
    merged = {k: v for k, v in {**base, **env}.items() if v != "<unset>"}
    return PodRun("kube-system", "backup-1", "demo-cp-1", merged,
                  {"/var/run/secrets/talos.dev/config": TALOSCONFIG})  # fmt: skip


async def test_an_encrypted_snapshot_lands_under_talos_backups_name(store: S3Store) -> None:
    code, log = await Snapshotless(lambda _: [], lambda: NOW)(pod(store))
    assert code == 0, log
    [(key, obj)] = store.objects("backups").items()
    assert key == "demo/demo-2026-12-07T09:00:00Z.snap.age"  # <prefix=cluster>/<cluster>-<RFC 3339>
    assert decrypt(obj.data, [IDENTITY]) == SNAPSHOT
    assert 'saved to "demo-2026-12-07T09:00:00Z.snap"' in log


async def test_prefix_and_disabled_encryption(store: S3Store) -> None:
    code, _ = await Snapshotless(lambda _: [], lambda: NOW)(
        pod(store, S3_PREFIX="clusters/prod", DISABLE_ENCRYPTION="true")
    )
    assert code == 0
    assert store.objects("backups")["clusters/prod/demo-2026-12-07T09:00:00Z.snap"].data == SNAPSHOT


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # v0.1.0-beta.3 turns path-style on only for "false": "true" means a virtual host
        ({"USE_PATH_STYLE": "true"}, "lookup backups.127.0.0.1: no such host"),
        ({"AWS_SECRET_ACCESS_KEY": "<unset>"}, "failed to retrieve credentials"),
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "StatusCode: 403, api error SignatureDoesNotMatch"),
        ({"BUCKET": "nope"}, "StatusCode: 404, api error NoSuchBucket"),
        ({"AGE_X25519_PUBLIC_KEY": "age1nope"}, "failed to parse public key"),
    ],
)
async def test_failures_exit_nonzero_with_talos_backups_message(
    store: S3Store, env: dict[str, str], message: str
) -> None:
    code, log = await Snapshotless(lambda _: [], lambda: NOW)(pod(store, **env))
    assert code == 255 and message in log, log
    assert store.objects("backups") == {}


async def test_without_a_reachable_talos_endpoint_nothing_is_uploaded(store: S3Store) -> None:
    code, log = await TalosBackup(lambda _: [], lambda: NOW)(pod(store))
    assert code == 255 and "failed to take etcd snapshot" in log
    code, log = await TalosBackup(lambda _: [], lambda: NOW)(
        PodRun("kube-system", "b", "n", pod(store).env, {})
    )
    assert code == 255 and "failed to get talosconfig" in log
