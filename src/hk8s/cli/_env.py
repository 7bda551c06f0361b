"""Everything hk8s reads from the environment, checked before the first request is sent.

A bad ``HK8S_PORT_MAP`` used to surface at the first SSH connection, after servers had been
created; ``HK8S_TIME_SCALE=nan`` hung ``create`` after four creates. Checking every variable
(and the token) here, once, turns each of those into a usage error (exit 2) while nothing has
been changed yet. The token's value never appears in a message, only what is wrong with it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hk8s.errors import UsageError
from hk8s.model.net import PORT_MAP_ENV, parse_port_map
from hk8s.model.timing import Timing

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["ENDPOINT_ENV", "MY_IP_URL_ENV", "check_environment", "check_token", "check_writable"]

# The same names as hk8s.providers.hcloud (imported lazily there); kept here so that checking
# the environment does not import the hcloud library.
ENDPOINT_ENV = "HCLOUD_ENDPOINT"
MY_IP_URL_ENV = "HK8S_MY_IP_URL"


def check_token(token: str | None) -> str:
    """The token without surrounding whitespace, or a usage error naming what is wrong.

    A token read from a file (``HCLOUD_TOKEN=$(cat token)`` keeps a CR from Windows files,
    ``--token "$(<file)"`` from some editors) ends in a newline; requests refuses such a header
    value with ``InvalidHeader`` and prints the header, token included, in the traceback.
    """
    if not token or not token.strip():
        raise UsageError(
            "no Hetzner Cloud API token",
            hint="export HCLOUD_TOKEN=<a read/write API token of the project> (or --token)",
        )
    cleaned = token.strip()
    for position, char in enumerate(cleaned, start=1):
        if not ("!" <= char <= "~"):
            what = "a non-ASCII character" if ord(char) > 127 else "a space or control character"
            raise UsageError(
                f"the Hetzner Cloud API token contains {what} (at position {position} of "
                f"{len(cleaned)})",
                hint="copy the token again from the Hetzner Console (Security > API tokens); "
                "it is 64 letters and digits",
            )
    return cleaned


def _check_url(name: str, raw: str) -> None:
    problem = None
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it must start with https:// (or http://)"
        elif not parts.hostname:
            problem = "it has no host name"
        elif any(c.isspace() for c in raw) or not raw.isascii():
            problem = "it contains spaces or non-ASCII characters"
    if problem:
        raise UsageError(
            f"{name}={raw!r} is not a usable URL: {problem}",
            hint=f"set {name} to a URL such as https://api.hetzner.cloud/v1, or unset it",
        )


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise ``UsageError`` for the first environment variable hk8s could not use."""
    env = os.environ if environ is None else environ
    Timing.from_env(dict(env))
    parse_port_map(env.get(PORT_MAP_ENV, ""))
    for name in (ENDPOINT_ENV, MY_IP_URL_ENV):
        raw = env.get(name, "")
        if raw:
            _check_url(name, raw)


def check_writable(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written, before any change is made.

    ``create --kubeconfig-path /nonexistent/x/kc`` used to build the whole cluster and fail at
    the very end. The file itself may not exist yet; its directory must, and must be writable.
    """
    target = path.expanduser()
    if target.is_dir():
        raise UsageError(
            f"{option} {path}: is a directory", hint="give the path of a file to write"
        )
    parent = target.resolve().parent
    if not parent.is_dir():
        raise UsageError(
            f"{option} {path}: the directory {parent} does not exist",
            hint=f"create it first (mkdir -p {parent}) or choose another path",
        )
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{option} {path}: not writable", hint="choose another path")
    if not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {path}: cannot create files in {parent}", hint="choose another path"
        )
