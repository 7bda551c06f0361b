"""Client certificates and keys for the kubernetes client, without writing them to disk.

The kubernetes client turns a kubeconfig's ``client-key-data`` into a file in ``$TMPDIR``
(``kube_config._create_temp_file_with_content``) and removes it only at interpreter exit: a
``create`` killed during bootstrap left the cluster admin's private key there. Python's ``ssl``
loads certificates from paths only, so the material goes into anonymous in-memory files
(``memfd_create(2)``), handed over as ``/proc/self/fd/<n>``: nothing reaches a file system and
the kernel frees them with the process, however it ends. Where memfd is not available, a 0600
file in a 0700 directory hk8s creates and removes (on ``close`` and at exit) is the fallback.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import shutil
import tempfile
from typing import Any

__all__ = ["InlineMaterial"]

# kubeconfig keys whose inline data the client would otherwise write to $TMPDIR.
_CLUSTER_KEYS = (("certificate-authority-data", "certificate-authority"),)
_USER_KEYS = (
    ("client-certificate-data", "client-certificate"),
    ("client-key-data", "client-key"),
)


class InlineMaterial:
    """Holds the in-memory files of one client; ``close()`` releases them."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._dir: str | None = None

    def externalise(self, document: dict[str, Any]) -> None:
        """Replace every inline ``*-data`` entry of ``document`` by a path to memory."""
        for section, keys in (("clusters", _CLUSTER_KEYS), ("users", _USER_KEYS)):
            for entry in document.get(section) or []:
                inner = entry.get(section[:-1]) if isinstance(entry, dict) else None
                if not isinstance(inner, dict):
                    continue
                for data_key, file_key in keys:
                    data = inner.pop(data_key, None)
                    if data:
                        inner[file_key] = self._path_for(base64.b64decode(data), file_key)

    def _path_for(self, content: bytes, name: str) -> str:
        memfd = getattr(os, "memfd_create", None)
        if memfd is not None and os.path.isdir("/proc/self/fd"):
            fd = memfd(f"hk8s-{name}", getattr(os, "MFD_CLOEXEC", 0))
            os.write(fd, content)
            self._fds.append(fd)
            return f"/proc/self/fd/{fd}"
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="hk8s-kube-")  # mode 0700
            atexit.register(self.close)
        fd, path = tempfile.mkstemp(dir=self._dir)  # mode 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        return path

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
