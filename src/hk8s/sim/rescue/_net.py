"""Downloads and decompression in the rescue shell: ``wget``, ``curl`` and ``xz``.

Downloads really happen, over loopback HTTP, from the simulated image factory. Hosts outside
127.0.0.0/8 do not resolve (the simulated rescue system has no internet, and this machine
must never contact one), with the exit statuses of the real tools: curl 6 / 22 (``-f`` on an
HTTP error), wget 4 / 8 (``man wget``, "EXIT STATUS"; ``man curl``, "EXIT CODES").
"""

from __future__ import annotations

import getopt
import http.client
import ipaddress
import lzma
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hk8s.sim.rescue._shell import CommandResult, fail

if TYPE_CHECKING:
    from hk8s.sim.rescue._shell import Command, Input, Shell

__all__ = ["NET_COMMANDS", "PartialBody", "loopback_http_get", "xz"]


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
            try:
                return int(response.status), response.read()
            except http.client.IncompleteRead as exc:
                expected = None if exc.expected is None else len(exc.partial) + exc.expected
                raise PartialBody(exc.partial, expected) from exc
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


class PartialBody(OSError):
    """The server closed the connection before the whole body arrived."""

    def __init__(self, partial: bytes, expected: int | None) -> None:
        super().__init__("transfer closed with outstanding read data remaining")
        self.partial = partial
        self.expected = expected


# curl --retry retries these without --retry-all-errors ("man curl": a timeout, HTTP 408,
# 429, 500, 502, 503 or 504); exit 18 (partial file) and 7 (refused) only with it.
_CURL_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CURL_LONG = [
    "fail", "silent", "show-error", "location", "output=", "retry=", "max-time=",
    "connect-timeout=", "speed-limit=", "speed-time=", "retry-delay=", "retry-max-time=",
    "retry-all-errors", "retry-connrefused",
]  # fmt: skip


def _curl(shell: Shell, args: list[str], stdin: Input) -> CommandResult:
    try:
        opts, urls = getopt.gnu_getopt(args, "fsSLo:m:Y:y:", _CURL_LONG)
    except getopt.GetoptError as exc:
        return fail(f"curl: {exc}\ncurl: try 'curl --help' for more information", 2)
    if not urls:
        return fail("curl: no URL specified\ncurl: try 'curl --help' for more information", 2)
    names = {o for o, _ in opts}
    values = dict(opts)
    for option in ("--retry", "--retry-delay", "--speed-limit", "--speed-time"):
        if option in values and not values[option].isdigit():
            return fail(f"curl: option {option}: expected a proper numerical parameter", 2)
    fail_on_error = bool(names & {"-f", "--fail"})
    show = not (names & {"-s", "--silent"}) or bool(names & {"-S", "--show-error"})
    output = next((v for o, v in opts if o in {"-o", "--output"}), "-")
    retries = int(values.get("--retry", "0"))
    all_errors = "--retry-all-errors" in names
    result = CommandResult()
    for attempt in range(retries + 1):
        result, transient = _curl_once(shell, urls[0], output, fail_on_error, show)
        if result.code == 0 or attempt == retries or not (transient or all_errors):
            break
        if show:
            result.stderr += (
                f"Warning: Problem : {'HTTP error' if transient else 'transfer error'}. Will "
                f"retry in {values.get('--retry-delay', '1')} seconds. {retries - attempt} "
                "retries left.\n"
            ).encode()
    return result


def _curl_once(
    shell: Shell, url: str, output: str, fail_on_error: bool, show: bool
) -> tuple[CommandResult, bool]:
    """One attempt; (result, whether --retry alone would retry it)."""
    try:
        status, body = _get(shell, url)
    except ResolveError as exc:
        return fail(f"curl: (6) {exc}" if show else "", 6), False
    except PartialBody as exc:
        # Real curl keeps what arrived in the output file and exits 18.
        _store(shell, output, exc.partial)
        missing = f" with {exc.expected - len(exc.partial)} bytes" if exc.expected else ""
        message = f"curl: (18) transfer closed{missing} remaining to read"
        return fail(message if show else "", 18), False
    except TimeoutError:
        return fail("curl: (28) Operation timed out" if show else "", 28), True
    except OSError as exc:
        return fail(f"curl: (7) Failed to connect: {exc}" if show else "", 7), False
    if fail_on_error and status >= 400:
        message = f"curl: (22) The requested URL returned error: {status}"
        return fail(message if show else "", 22), status in _CURL_TRANSIENT_STATUS
    result = CommandResult(stdout=body) if output == "-" else CommandResult()
    _store(shell, output, body)
    return result, False


def _store(shell: Shell, output: str, data: bytes) -> None:
    if output != "-":
        shell.write_file(output, data)


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
        if data[:6] != b"\xfd7zXZ\x00":
            return fail(f"xz: {label}: File format not recognized", 1)
        # Real xz streams: what it decoded before the damage is already written when it
        # fails (a cut-short download gives a partial image on stdout, then exit 1).
        decoder = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            raw = decoder.decompress(data)
        except lzma.LZMAError:
            # (The one-shot decoder keeps nothing of a corrupt block: no partial output.)
            return _xz_failed(out, label, "Compressed data is corrupt")
        if not decoder.eof:
            if to_stdout:
                out.stdout += raw
            return _xz_failed(out, label, "Unexpected end of input")
        if to_stdout:
            out.stdout += raw
        elif not path.endswith(".xz"):
            return fail(f"xz: {path}: Filename has an unknown suffix, skipping", 2)
        else:
            shell.write_file(path.removesuffix(".xz"), raw)
            if not names & {"-k", "--keep"}:
                shell.machine.files.pop(path, None)
    return out


def _xz_failed(out: CommandResult, label: str, message: str) -> CommandResult:
    out.stderr += f"xz: {label}: {message}\n".encode()
    out.code = 1
    return out


NET_COMMANDS: dict[str, Command] = {"wget": _wget, "curl": _curl}
