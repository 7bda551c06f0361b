"""Bad input fails early and clearly: exit 2, a message naming the problem, no request sent.

A small local HTTP server stands in for HCLOUD_ENDPOINT and counts what reaches it, so each
test can tell "refused before the first request" from "failed later".
"""

from __future__ import annotations

import http.server
import threading
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CONFIG = (
    "name: demo\nlocation: fsn1\n"
    "firewall: {kube_api_sources: [203.0.113.0/24], talos_api_sources: [203.0.113.0/24]}\n"
)
TOKEN = "t" * 64


class _Endpoint(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]]
    body = (
        b'{"servers": [], "meta": {"pagination": {"page": 1, "per_page": 50, '
        b'"previous_page": null, "next_page": null, "last_page": 1, "total_entries": 0}}}'
    )
    content_type = "application/json"

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("Authorization", "")))
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Endpoint]]:
    handler = type("Handler", (_Endpoint,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("HK8S_TIME_SCALE", "HK8S_PORT_MAP", "HK8S_MY_IP_URL", "HCLOUD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HCLOUD_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("HK8S_TIME_SCALE", "100")
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HK8S_TIME_SCALE", "nan", "HK8S_TIME_SCALE='nan' is not a number"),
        ("HK8S_TIME_SCALE", "inf", "HK8S_TIME_SCALE='inf' is not a number"),
        ("HK8S_TIME_SCALE", "1e-9", "HK8S_TIME_SCALE='1e-9' is not a number"),
        ("HK8S_PORT_MAP", "22=abc", "'abc' is not a port number"),
        ("HCLOUD_ENDPOINT", "http://[::1", "is not a usable URL"),
        ("HCLOUD_ENDPOINT", "https://api.hetzner.cloud:port/v1", "is not a usable URL"),
        ("HCLOUD_ENDPOINT", "api.hetzner.cloud/v1", "is not a usable URL"),
        ("HK8S_MY_IP_URL", "ftp://example.com", "is not a usable URL"),
    ],
)
def test_every_environment_variable_is_checked_before_the_first_request(
    cli: Callable[..., Any],
    write: Callable[[str], Path],
    endpoint: type[_Endpoint],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(name, value)
    for command in (["create"], ["plan"], ["destroy", "--yes"], ["image", "build"]):
        result = cli(*command, "-f", str(write(CONFIG)), "--token", TOKEN)
        assert result.exit_code == 2, (command, result.stderr)
        assert expected in result.stderr
    assert endpoint.seen == []


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("tök" + "t" * 61, "non-ASCII character (at position 2 of 64)"),
        ("tt tt", "a space or control character"),
        ("ab\r\ncd", "a space or control character"),
        ("  \n", "no Hetzner Cloud API token"),
    ],
)
def test_a_bad_token_is_named_and_never_shown(
    cli: Callable[..., Any],
    write: Callable[[str], Path],
    endpoint: type[_Endpoint],
    token: str,
    expected: str,
) -> None:
    result = cli("--debug", "plan", "-f", str(write(CONFIG)), "--token", token)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert token.strip() not in result.stderr + result.stdout or not token.strip()
    assert endpoint.seen == []


def test_a_token_read_from_a_file_loses_its_line_ending(
    cli: Callable[..., Any],
    write: Callable[[str], Path],
    endpoint: type[_Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HCLOUD_TOKEN", TOKEN + "\r\n")
    cli("--debug", "plan", "--infra-only", "-f", str(write(CONFIG)))
    assert endpoint.seen, "the run reached the API"
    assert {auth for _, _, auth in endpoint.seen} == {f"Bearer {TOKEN}"}


def test_an_html_endpoint_is_named_as_the_wrong_endpoint(
    cli: Callable[..., Any], write: Callable[[str], Path], endpoint: type[_Endpoint]
) -> None:
    endpoint.body = b"<html><body>Welcome to nginx!</body></html>"
    endpoint.content_type = "text/html; charset=utf-8"
    result = cli("plan", "--infra-only", "-f", str(write(CONFIG)), "--token", TOKEN)
    assert result.exit_code == 1
    assert "answered 200 with text/html, not JSON" in result.stderr
    assert "HCLOUD_ENDPOINT" in result.stderr


@pytest.mark.parametrize("name", ["a,managed-by", "", "Demo", "a=b"])
def test_destroy_name_must_be_a_cluster_name(
    cli: Callable[..., Any], endpoint: type[_Endpoint], name: str
) -> None:
    result = cli("destroy", "--name", name, "--yes", "--token", TOKEN)
    assert result.exit_code == 2
    assert "is not a valid cluster name" in result.stderr
    assert endpoint.seen == []


def test_output_paths_are_checked_before_any_change(
    cli: Callable[..., Any], write: Callable[[str], Path], endpoint: type[_Endpoint]
) -> None:
    config = str(write(CONFIG))
    for flag in ("--kubeconfig-path", "--talosconfig-path", "--secrets"):
        result = cli("create", "-f", config, "--token", TOKEN, flag, "/nonexistent/x/kc")
        assert result.exit_code == 2
        assert f"{flag} /nonexistent/x/kc: the directory /nonexistent/x does not exist" in (
            result.stderr
        )
    for command in ("kubeconfig", "talosconfig"):
        result = cli(command, "-f", config, "--token", TOKEN, "--path", "/nonexistent/x/kc")
        assert result.exit_code == 2, result.stderr
    assert endpoint.seen == []


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--images"], "--images applies to plan --destroy only"),
        (["--destroy", "--infra-only"], "do not apply to plan --destroy"),
        (["--destroy", "--servers"], "do not apply to plan --destroy"),
    ],
)
def test_plan_flags_that_do_not_combine_are_refused(
    cli: Callable[..., Any],
    write: Callable[[str], Path],
    endpoint: type[_Endpoint],
    flags: list[str],
    expected: str,
) -> None:
    result = cli("plan", *flags, "-f", str(write(CONFIG)), "--token", TOKEN)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert endpoint.seen == []


@pytest.mark.parametrize("host", ["192.0.2.1", "0.0.0.0", "example.com", "::"])
def test_the_simulator_refuses_non_loopback_hosts(cli: Callable[..., Any], host: str) -> None:
    result = cli("sim", "up", "--host", host)
    assert result.exit_code == 2
    assert "loopback addresses only" in result.stderr


def test_a_config_that_is_a_fifo_is_refused(
    cli: Callable[..., Any], tmp_path: Path, endpoint: type[_Endpoint]
) -> None:
    import os

    fifo = tmp_path / "cluster.yaml"
    os.mkfifo(fifo)
    result = cli("config", "validate", "-f", str(fifo))
    assert result.exit_code == 2
    assert "not a regular file" in result.stderr


# Talos 1.14 moved machine.time to the TimeSyncConfig document and its v1alpha1 no longer has
# the field. (1.12 and 1.13 moved it too, but their machinery still accepts the old field: the
# Go oracles in tests/oracles/talos say so, so hk8s accepts it there.)
TIME_PATCH = CONFIG + (
    "talos:\n  version: v1.14.1\n  patches:\n    all:\n"
    "      - machine: {time: {servers: [ntp1.hetzner.de]}}\n"
)


def test_a_patch_the_talos_version_refuses_is_found_before_any_change(
    cli: Callable[..., Any], write: Callable[[str], Path], endpoint: type[_Endpoint]
) -> None:
    # configs/production.yaml once had such a patch: create built 8 servers, then refused it.
    config = str(write(TIME_PATCH))
    validate = cli("config", "validate", "-f", config)
    assert validate.exit_code == 2
    assert "talos.patches.all[0]: machine.time: unknown field for the Talos 1.14" in (
        validate.stderr
    )
    create = cli("create", "-f", config, "--token", TOKEN)
    assert create.exit_code == 2
    assert "machine.time" in create.stderr
    assert endpoint.seen == []
