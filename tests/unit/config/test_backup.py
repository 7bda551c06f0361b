"""``backup:`` in cluster.yaml: what is accepted, and what a user reads for each mistake."""

from __future__ import annotations

import pytest

from hk8s.config import parse_config, parse_duration
from hk8s.errors import ConfigError, ConfigProblem
from hk8s.pki.age import generate_identity

RECIPIENT = generate_identity().recipient


def cluster(backup: str) -> str:
    return f"name: demo\nlocation: fsn1\nbackup:\n{backup}"


GOOD = f"""\
  schedule: "0 * * * *"
  endpoint: https://fsn1.your-objectstorage.com/
  bucket: demo-backups
  region: fsn1
  age_public_key: {RECIPIENT}
"""


def problems(text: str) -> dict[str, ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return {p.path: p for p in info.value.problems}


def test_a_minimal_backup_section_gets_defaults() -> None:
    backup = parse_config(cluster(GOOD)).backup
    assert backup is not None
    assert backup.endpoint == "https://fsn1.your-objectstorage.com"  # trailing / dropped
    assert backup.prefix is None and backup.retention is None
    assert backup.credentials.access_key_id_env == "AWS_ACCESS_KEY_ID"
    assert backup.credentials.secret is None


def test_no_backup_section_means_no_backups() -> None:
    assert parse_config("name: demo\nlocation: fsn1\n").backup is None


@pytest.mark.parametrize(
    ("line", "path", "message"),
    [
        ('  schedule: "0 25 * * *"', "backup.schedule", "hour: 25 is outside 0-23"),
        ("  endpoint: fsn1.your-objectstorage.com", "backup.endpoint", "not an S3 endpoint"),
        ("  endpoint: https://h.example/bucket", "backup.endpoint", "has a path"),
        ("  bucket: My_Bucket", "backup.bucket", "not a bucket name"),
        ("  prefix: /demo/", "backup.prefix", "no leading, trailing"),
        ("  age_public_key: age1qqqq", "backup.age_public_key", "not an age public key"),
        ("  retention: {max_age: 2 weeks}", "backup.retention.max_age", "not a duration"),
        ("  retention: {keep: 0}", "backup.retention.keep", "0 is too small"),
        ("  retention: {}", "backup.retention", "needs `keep`, `max_age` or both"),
        ("  credentials: {secret_access_key: abc}", "backup.credentials.secret_access_key",
         "unknown key"),
        ("  access_key: AKIA123", "backup.access_key", "unknown key"),
    ],
)  # fmt: skip
def test_each_mistake_names_its_path(line: str, path: str, message: str) -> None:
    key = line.split(":")[0].strip()
    text = "".join(
        f"{line}\n" if existing.split(":")[0].strip() == key else f"{existing}\n"
        for existing in GOOD.splitlines()
    )
    if key not in GOOD:
        text += line + "\n"
    found = problems(cluster(text))
    assert path in found, found
    assert message in found[path].message


def test_the_secret_key_in_place_of_the_public_one_is_refused_without_echoing_it() -> None:
    secret = str(generate_identity())
    found = problems(cluster(GOOD.replace(RECIPIENT, secret)))
    problem = found["backup.age_public_key"]
    assert "secret key" in problem.message
    assert secret not in f"{problem.message} {problem.hint}"


def test_a_recipient_with_a_typo_fails_its_checksum() -> None:
    typo = RECIPIENT[:-1] + ("q" if RECIPIENT[-1] != "q" else "p")
    found = problems(cluster(GOOD.replace(RECIPIENT, typo)))
    assert "checksum" in found["backup.age_public_key"].message


def test_retention_durations() -> None:
    assert [parse_duration(d) for d in ("36h", "14d", "2w")] == [36, 336, 336]


@pytest.mark.parametrize(
    ("endpoint", "normalised"),
    [
        ("https://fsn1.your-objectstorage.com:443", "https://fsn1.your-objectstorage.com"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("HTTPS://S3.Example.com", "https://s3.example.com"),
    ],
)
def test_endpoints_are_normalised_as_clients_send_the_host(endpoint: str, normalised: str) -> None:
    backup = parse_config(cluster(GOOD.replace("https://fsn1.your-objectstorage.com/", endpoint)))
    assert backup.backup is not None and backup.backup.endpoint == normalised
