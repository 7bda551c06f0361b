"""``backup:`` from the command line: missing credentials, sections, identities and bad URLs
are usage errors (exit 2) named before any request, and a secret never shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

CONFIG = (
    "name: demo\nlocation: fsn1\n"
    "firewall: {kube_api_sources: [203.0.113.0/24], talos_api_sources: [203.0.113.0/24]}\n"
)
TOKEN = "t" * 64
BACKUP = """\
backup:
  schedule: "0 * * * *"
  endpoint: http://127.0.0.1:9
  bucket: demo-backups
  region: fsn1
  age_public_key: age1v4k20f9e4yk722p9230qe66rhtqzy4xfa56jtsy7l2h9f3j9vvhqvejghl
"""


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HK8S_AGE_IDENTITY"):
        monkeypatch.delenv(name, raising=False)
    # Nothing answers here: a request sent would fail differently (not exit 2).
    monkeypatch.setenv("HCLOUD_ENDPOINT", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("HK8S_TIME_SCALE", raising=False)


def test_create_refuses_missing_s3_credentials_before_any_request(
    cli: Callable[..., Any], write: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    result = cli("create", "-f", str(write(CONFIG + BACKUP)), "--token", TOKEN)
    assert result.exit_code == 2, result.stderr
    assert "AWS_SECRET_ACCESS_KEY is not set" in result.stderr
    # An existing Secret named in cluster.yaml: create needs no variables.
    with_secret = BACKUP + "  credentials: {secret: my-s3}\n"
    monkeypatch.setenv("HCLOUD_ENDPOINT", "http://[::1")  # stop at the next check instead
    result = cli("create", "-f", str(write(CONFIG + with_secret)), "--token", TOKEN)
    assert "AWS_SECRET_ACCESS_KEY" not in result.stderr


def test_backups_needs_a_backup_section_and_credentials(
    cli: Callable[..., Any], write: Callable[[str], Path]
) -> None:
    result = cli("etcd", "backups", "-f", str(write(CONFIG)))
    assert result.exit_code == 2 and "has no backup section" in result.stderr
    result = cli("etcd", "backups", "-f", str(write(CONFIG + BACKUP)))
    assert result.exit_code == 2
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set" in result.stderr
    result = cli("etcd", "backups", "--prune", "-f", str(write(CONFIG + BACKUP)))
    assert result.exit_code == 2 and "--prune needs backup.retention" in result.stderr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s3://demo-backups", "is not an s3://bucket/key URL"),
        ("s3://demo-backups/demo/x.snap.zst.age", "zstd-compressed"),
        ("s3://demo-backups/demo/x.snap.age", "no age identity was given"),
    ],
)
def test_restore_from_s3_refuses_bad_input_before_any_request(
    cli: Callable[..., Any], write: Callable[[str], Path], source: str, expected: str
) -> None:
    result = cli("etcd", "restore", "--yes", "--from", source, "-f", str(write(CONFIG + BACKUP)))
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr


def test_a_secret_key_given_as_identity_file_that_is_wrong_is_named_not_shown(
    cli: Callable[..., Any], write: Callable[[str], Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("HK8S_AGE_IDENTITY", "AGE-SECRET-KEY-1NOTAKEY")
    result = cli("etcd", "restore", "--yes", "--from", "s3://demo-backups/demo/x.snap.age",
                 "-f", str(write(CONFIG + BACKUP)))  # fmt: skip
    assert result.exit_code == 2 and "age identity is not usable" in result.stderr
    assert "NOTAKEY" not in result.stderr
