"""The app shell: help, version, global options, and how errors become messages and codes."""

from __future__ import annotations

import json
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pytest
import typer

import hk8s
from hk8s.cli import COMMANDS, build_app
from hk8s.cli import _app as cli_app
from hk8s.cli import _main as cli_main
from hk8s.cli._app import load_command
from hk8s.config import ADDON_CHARTS
from hk8s.errors import NotFoundError, RateLimitedError, UsageError
from hk8s.model import changes

if TYPE_CHECKING:
    from collections.abc import Callable


def test_help_lists_the_commands_and_global_options(cli: Callable[..., Any]) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for word in ("config", "version", "--output", "--verbose", "--debug"):
        assert word in result.stdout


def test_every_listed_command_loads_and_its_help_line_is_its_own() -> None:
    """``hk8s --help`` shows COMMANDS' lines without building the commands: they must match."""
    for name, (module, line) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name, f"{module} registers {command.name!r}, not {name!r}"
        first_line = (command.help or "").strip().splitlines()[0]
        assert first_line == line, f"{name}: COMMANDS says {line!r}, its docstring {first_line!r}"


def test_help_builds_no_command(monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]) -> None:
    built: list[str] = []
    monkeypatch.setattr(cli_app, "load_command", lambda name: built.append(name))
    result = cli("--help")
    assert result.exit_code == 0
    assert "create       Create or converge the cluster" in result.stdout
    assert built == []


def test_version_text_and_json(cli: Callable[..., Any]) -> None:
    text = cli("version")
    assert text.exit_code == 0
    assert text.stdout.startswith(f"hk8s {hk8s.__version__} ")
    data = json.loads(cli("--output", "json", "version").stdout)
    assert data["version"] == hk8s.__version__


def test_version_matrix_text_and_json(cli: Callable[..., Any]) -> None:
    text = cli("version", "--matrix")
    assert text.exit_code == 0
    rows = {line.split()[0]: line for line in text.stdout.splitlines() if line[:1].isdigit()}
    assert rows["1.14"].split()[1:3] == ["1.32-1.37", "1.12.0"]
    assert "talos114.go" in rows["1.14"]
    assert "minimum hcloud_ccm 1.30.1" in text.stdout and "datacenter" in text.stdout
    data = json.loads(cli("version", "--matrix", "-o", "json").stdout)
    assert data["defaults"]["charts"]["hcloud_ccm"] == ADDON_CHARTS["hcloud_ccm"].version
    (talos_114,) = [r for r in data["talos"] if r["minor"] == "1.14"]
    assert talos_114["kubernetes"] == {"min": "1.32", "max": "1.37"}
    assert talos_114["upgrade_from"] == "1.12.0"
    ms = [c for c in data["charts"] if c["addon"] == "metrics_server"]
    assert ms and all(c["kubernetes"]["max"] is None and c["source"] for c in ms)


def test_version_is_the_installed_distributions() -> None:
    """pyproject.toml's static version (what pip and uv.lock see) and hk8s.__version__ agree."""
    assert metadata.version("hk8s") == hk8s.__version__


def test_usage_errors_exit_2(cli: Callable[..., Any]) -> None:
    unknown = cli("--no-such-option")
    assert unknown.exit_code == 2
    assert "No such option" in unknown.stderr
    assert cli("no-such-command").exit_code == 2
    assert cli("--output", "yaml", "version").exit_code == 2


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException], None]:
    """Make the app's only command raise ``exc`` when run as ``hk8s boom``."""

    def install(exc: BaseException) -> None:
        real_build = build_app

        def build() -> typer.Typer:
            app = real_build()

            @app.command("boom")
            def boom() -> None:
                raise exc

            return app

        monkeypatch.setattr(cli_main, "build_app", build)

    return install


def test_hk8s_error_is_one_message_with_hint_and_exit_1(
    cli: Callable[..., Any], failing: Callable[[BaseException], None]
) -> None:
    failing(NotFoundError("server demo-cp-1 not found", hint="run hk8s create first"))
    result = cli("boom")
    assert result.exit_code == 1
    assert result.stderr == "error: server demo-cp-1 not found\nhint: run hk8s create first\n"


def test_debug_adds_the_traceback(
    cli: Callable[..., Any], failing: Callable[[BaseException], None]
) -> None:
    failing(NotFoundError("gone"))
    result = cli("--debug", "boom")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "error: gone" in result.stderr


def test_json_mode_reports_errors_as_json(
    cli: Callable[..., Any], failing: Callable[[BaseException], None]
) -> None:
    failing(RateLimitedError("slow down", action_id=42))
    result = cli("-o", "json", "boom")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "RateLimitedError"
    assert error["retryable"] is True
    assert error["context"] == {"action_id": "42"}


def test_unexpected_exception_is_an_internal_error_without_traceback(
    cli: Callable[..., Any], failing: Callable[[BaseException], None]
) -> None:
    failing(RuntimeError("oops"))
    result = cli("boom")
    assert result.exit_code == 1
    assert "internal error: RuntimeError: oops" in result.stderr
    assert "--debug" in result.stderr
    assert "Traceback" not in result.stderr


def test_interrupt_exits_130(
    cli: Callable[..., Any], failing: Callable[[BaseException], None]
) -> None:
    failing(KeyboardInterrupt())
    assert cli("boom").exit_code == 130


def test_typer_exit_code_passes_through(
    cli: Callable[..., Any], failing: Callable[[BaseException], None]
) -> None:
    failing(typer.Exit(3))
    assert cli("boom").exit_code == 3


def test_exit_2_only_when_nothing_was_changed(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A usage error found after this run changed something is no "nothing was changed"."""
    real_build = build_app

    def build() -> typer.Typer:
        app = real_build()

        @app.command("late")
        def late() -> None:
            changes.record("hetzner", 6)
            raise UsageError("HK8S_PORT_MAP='22=abc': 'abc' is not a port number")

        @app.command("early")
        def early() -> None:
            raise UsageError("bad flag")

        return app

    monkeypatch.setattr(cli_main, "build_app", build)
    assert cli("early").exit_code == 2
    result = cli("late")
    assert result.exit_code == 1
    assert "already made changes (6 Hetzner API change(s))" in result.stderr
    assert cli("early").exit_code == 2, "each run counts its own changes"
    data = json.loads(cli("-o", "json", "late").stdout)["error"]
    assert (data["exit_code"], data["changes_made"]) == (1, "6 Hetzner API change(s)")
