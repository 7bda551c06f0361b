"""Downloads and decompression in the rescue shell: ``wget``, ``curl`` and ``xz``.

Downloads really happen, over loopback HTTP, from the simulated image factory. Hosts outside
127.0.0.0/8 do not resolve (the simulated rescue system has no internet, and this machine
must never contact one), with the exit statuses of the real tools: curl 6 / 22 (``-f`` on an
HTTP error), wget 4 / 8 (``man wget``, "EXIT STATUS"; ``man curl``, "EXIT CODES").
"""

from __future__ import annotations

import getopt
import ipaddress
import lzma
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hk8s.sim.rescue._shell import CommandResult, fail

if TYPE_CHECKING:
    from hk8s.sim.rescue._shell import Command, Input, Shell

__all__ = ["NET_COMMANDS", "loopback_http_get", "xz"]


class ResolveError(OSError):
    """The host is not on loopback: the simulated rescue system cannot resolve it."""


def loopback_http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET ``url`` if its host is a loopback address; (status, body) also for HTTP errors."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ResolveError(f"Could not resolve host: {host}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _get(shell: Shell, url: str) -> tuple[int, bytes]:
    getter = shell.machine.http_get or loopback_http_get
    return getter(url)


def _wget(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, urls = getopt.gnu_getopt(
            args, "qO:nv", ["quiet", "output-document=", "no-verbose", "tries=", "timeout="]
        )
    except getopt.GetoptError as exc:
        return fail(f"wget: {exc}\nUsage: wget [OPTION]... [URL]...", 2)
    if len(urls) != 1:
        return fail("wget: missing URL" if not urls else "wget: one URL at a time, please", 1)
    output = next((v for o, v in opts if o in {"-O", "--output-document"}), None)
    quiet = any(o in {"-q", "--quiet"} for o, _ in opts)
    url = urls[0]
    try:
        status, body = _get(shell, url)
    except ResolveError as exc:
        return fail(f"wget: unable to resolve host address '{urlsplit(url).hostname}' ({exc})", 4)
    except OSError as exc:
        return fail(f"wget: failed: {exc}.", 4)
    if status >= 400:
        return fail("" if quiet else f"{url}:\nERROR {status}.", 8)
    target = output or url.rstrip("/").rsplit("/", 1)[-1] or "index.html"
    if target == "-":
        return CommandResult(stdout=body)
    shell.write_file(target, body)
    note = b"" if quiet else f"'{target}' saved [{len(body)}/{len(body)}]\n".encode()
    return CommandResult(stderr=note)


def _curl(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, urls = getopt.gnu_getopt(
            args,
            "fsSLo:",
            ["fail", "silent", "show-error", "location", "output=", "retry=", "max-time="],
        )
    except getopt.GetoptError as exc:
        return fail(f"curl: {exc}\ncurl: try 'curl --help' for more information", 2)
    if not urls:
        return fail("curl: no URL specified\ncurl: try 'curl --help' for more information", 2)
    names = {o for o, _ in opts}
    fail_on_error = bool(names & {"-f", "--fail"})
    show = not (names & {"-s", "--silent"}) or bool(names & {"-S", "--show-error"})
    output = next((v for o, v in opts if o in {"-o", "--output"}), "-")
    try:
        status, body = _get(shell, urls[0])
    except ResolveError as exc:
        return fail(f"curl: (6) {exc}" if show else "", 6)
    except OSError as exc:
        return fail(f"curl: (7) Failed to connect: {exc}" if show else "", 7)
    if fail_on_error and status >= 400:
        return fail(f"curl: (22) The requested URL returned error: {status}" if show else "", 22)
    if output == "-":
        return CommandResult(stdout=body)
    shell.write_file(output, body)
    return CommandResult()


def xz(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    """``xz -d``/``-dc``/``--decompress --stdout`` [FILE]: decompression only."""
    try:
        opts, files = getopt.gnu_getopt(
            args, "dckqvfT:", ["decompress", "stdout", "keep", "quiet", "threads="]
        )
    except getopt.GetoptError as exc:
        return fail(f"xz: {exc}", 1)
    names = {o for o, _ in opts}
    if not names & {"-d", "--decompress"}:
        return fail("xz: this rescue system only decompresses (use xz -d)", 1)
    to_stdout = bool(names & {"-c", "--stdout"}) or not files
    out = CommandResult()
    for path in files or ["-"]:
        data = stdin() if path == "-" else shell.read_file(path)
        label = "(stdin)" if path == "-" else path
        try:
            raw = lzma.decompress(data, format=lzma.FORMAT_XZ)
        except lzma.LZMAError:
            message = "File format not recognized" if data[:6] != b"\xfd7zXZ\x00" else "Corrupt"
            return fail(f"xz: {label}: {message}", 1)
        if to_stdout:
            out.stdout += raw
        elif not path.endswith(".xz"):
            return fail(f"xz: {path}: Filename has an unknown suffix, skipping", 2)
        else:
            shell.write_file(path.removesuffix(".xz"), raw)
            if not names & {"-k", "--keep"}:
                shell.machine.files.pop(path, None)
    return out


NET_COMMANDS: dict[str, Command] = {"wget": _wget, "curl": _curl}
