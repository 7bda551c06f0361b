"""The exact command lines an image build sends to the rescue system, as pure functions.

What real rescue systems taught (and a test runs these very strings through real bash,
coreutils, xz and curl against a file-backed disk, from ``/bin/sh``):

- The login shell is not ours to choose: it may be dash (no ``set -o pipefail``), a German
  locale changes dd's summary ("Bytes ... kopiert"), and a chatty ``.bashrc`` prints into
  stdout. Every command therefore runs as ``timeout ... env LC_ALL=C bash --noprofile
  --norc -c '<script>'``, and output to parse sits between markers.
- ``timeout -k`` ends the remote command itself when hk8s gives up on it, so a hung ``dd``
  or download does not outlive the connection.
- curl: connect and low-speed timeouts, and ``--retry`` with ``--retry-all-errors``, so a
  dropped connection (exit 18, a partial body) is retried rather than failing the build.
- ``blkdiscard`` before writing, as hcloud-upload-image and terraform-hcloud-kubernetes do:
  unwritten blocks read as zeros (smaller snapshots), and no stale backup GPT survives at the
  end of the disk. Disks that cannot discard are written all the same.

>>> remote("echo hi", 60)
"timeout -k 15 60 env LC_ALL=C LANG=C bash --noprofile --norc -c 'set -eo pipefail; echo hi'"
"""

from __future__ import annotations

import math
import shlex

__all__ = [
    "BEGIN",
    "END",
    "LSBLK",
    "between_markers",
    "discard_command",
    "download_command",
    "marked",
    "remote",
    "verify_command",
    "write_command",
]

BEGIN = "--hk8s-begin--"
END = "--hk8s-end--"
LSBLK = "lsblk -J -d -b -o NAME,PATH,TYPE,SIZE,RO,RM"
# curl: give up on a connection after 30 s, on a transfer slower than 10 KiB/s for 60 s; try
# again up to 5 times on any error (a cut-short body is exit 18, not a "transient" error).
_CURL = (
    "curl -fsSL --connect-timeout 30 --speed-limit 10240 --speed-time 60 "
    "--retry 5 --retry-delay 2 --retry-all-errors"
)
_KILL_AFTER = 15  # seconds between timeout's TERM and its KILL


def remote(script: str, seconds: float) -> str:
    """``script`` for any login shell: bash, C locale, no rc files, killed after ``seconds``."""
    limit = max(1, math.ceil(seconds))
    inner = shlex.quote(f"set -eo pipefail; {script}")
    return (
        f"timeout -k {_KILL_AFTER} {limit} env LC_ALL=C LANG=C bash --noprofile --norc -c {inner}"
    )


def marked(script: str) -> str:
    """``script``'s output between markers, so anything an rc file prints is ignored."""
    return f"echo {BEGIN}; {script}; echo {END}"


def between_markers(stdout: str) -> str:
    """The text between ``BEGIN`` and ``END`` lines (all of it when the markers are missing)."""
    start = stdout.find(BEGIN)
    stop = stdout.rfind(END)
    if start < 0 or stop < start:
        return stdout
    return stdout[start + len(BEGIN) : stop].strip()


def download_command(url: str, path: str) -> str:
    return f"{_CURL} -o {shlex.quote(path)} {shlex.quote(url)}"


def discard_command(disk: str) -> str:
    # -f: util-linux >= 2.36 refuses a disk holding a filesystem signature without it; older
    # versions do not know -f. Neither must stop the build.
    quoted = shlex.quote(disk)
    return f"blkdiscard -f {quoted} 2>/dev/null || blkdiscard {quoted} 2>/dev/null || true"


def write_command(path: str, disk: str) -> str:
    return f"xz -dc {shlex.quote(path)} | dd of={shlex.quote(disk)} bs=4M conv=fsync"


def verify_command(path: str, disk: str, size: int) -> str:
    # Dropping the page cache makes `head` read the disk, not what dd left in memory
    # (Documentation/admin-guide/sysctl/vm.rst, drop_caches); where that is not allowed the
    # check still compares what the kernel returns.
    return (
        "sync; echo 3 2>/dev/null > /proc/sys/vm/drop_caches || true; "
        f"xz -dc {shlex.quote(path)} | sha256sum; head -c {size} {shlex.quote(disk)} | sha256sum"
    )
