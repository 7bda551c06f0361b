"""Every poll interval, backoff and timeout hk8s uses, in one settings object.

Values are in clock seconds (see ``hk8s.model.clock``). ``Timing.scaled(speed)`` divides them
all by the simulator's speed, so client and simulator keep their real proportions. hk8s reads
the factor from ``HK8S_TIME_SCALE`` (printed by ``hk8s sim up``); real clouds run at 1.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from hk8s.errors import UsageError

__all__ = ["TIME_SCALE_ENV", "Timing"]

TIME_SCALE_ENV = "HK8S_TIME_SCALE"
# The simulator's --speed range: slower than 1/1000 of real time would turn a 30 s request
# timeout into 8 hours; faster than 100000 leaves timeouts below a scheduler tick.
MIN_TIME_SCALE = 0.001
MAX_TIME_SCALE = 100_000.0
# The least wall time a scaled cluster wait gets (``Timing.scaled``): the real kube-apiserver
# of the simulated world took more than 12 s to start on a loaded CI machine.
SCALED_CLUSTER_TIMEOUT_FLOOR = 60.0


@dataclass(frozen=True)
class Timing:
    # HTTP/gRPC/SSH request timeout (connect + read), wall seconds are never below 2 s.
    request_timeout: float = 30.0
    # Talos' Upgrade call pulls and test-runs the installer image before it answers
    # (v1alpha1_server.go Upgrade -> install.PullAndValidateInstallerImage), and the Image
    # Factory builds an installer on its first request: minutes, not a request's seconds.
    upgrade_call_timeout: float = 600.0
    # Backoff between retries of a failed request: first, cap, and attempts before giving up.
    retry_initial: float = 1.0
    retry_max: float = 30.0
    retry_attempts: int = 8
    # Polling a Hetzner action (batched): first interval, cap, and the overall deadline.
    action_poll_initial: float = 1.0
    action_poll_max: float = 10.0
    action_timeout: float = 900.0
    # A server still starting this long, and 3x as long as the slowest of those created with
    # it, is left behind by create (controller/_stragglers.py); Hetzner starts one in < 1 min.
    straggler_after: float = 180.0
    # A server (or rescue system) answering after power-on.
    boot_timeout: float = 600.0
    node_poll_interval: float = 1.0
    # Cluster-level conditions: etcd, Kubernetes API, nodes Ready, addons rolled out. Each
    # wait is one cheap GET per second; a 5 s poll put up to 5 s of idle time on every link of
    # the create's critical path (API up, Jobs done, rollouts, nodes Ready, health). Waits on
    # a Kubernetes collection list it once and then follow a watch (providers/k8s/_cluster.py).
    cluster_timeout: float = 1200.0
    cluster_poll_interval: float = 1.0
    # An image build's claim (its SSH key) is refreshed this often while the build runs; a
    # waiter takes a claim over once its heartbeat has not changed for 4 of these
    # (controller/_image_claim.py).
    claim_heartbeat_interval: float = 30.0
    # Progress for logs: the first "still waiting for ..." line after this long, then at
    # doubling gaps up to 16 times it (a stuck run stays obvious without flooding the log).
    progress_interval: float = 30.0

    def retry_delay(self, failures: int) -> float:
        """The backoff after ``failures`` failed attempts (1, 2, ...): ``retry_initial``,
        doubling, at most ``retry_max``."""
        return min(self.retry_max, self.retry_initial * 2.0 ** (failures - 1))

    def scaled(self, speed: float) -> Timing:
        """The same schedule ``speed`` times faster (``attempts`` stay as they are), but
        ``cluster_timeout`` not below ``SCALED_CLUSTER_TIMEOUT_FLOOR`` wall seconds (nor above
        its own): the simulated world runs the real Kubernetes control plane, whose start,
        controller passes and Job backoffs take wall time that no speed shrinks."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        changes = {
            f.name: getattr(self, f.name) / speed
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), float)
        }
        floor = min(self.cluster_timeout, SCALED_CLUSTER_TIMEOUT_FLOOR)
        changes["cluster_timeout"] = max(changes["cluster_timeout"], floor)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Timing:
        env = os.environ if environ is None else environ
        raw = env.get(TIME_SCALE_ENV, "").strip()
        if not raw:
            return cls()
        try:
            speed = float(raw)
        except ValueError:
            speed = math.nan
        # "nan" and "inf" parse as floats: nan compares false with everything (every wait
        # would end at once, or never), inf turns every timeout into 0.
        if not (MIN_TIME_SCALE <= speed <= MAX_TIME_SCALE):
            raise UsageError(
                f"{TIME_SCALE_ENV}={raw!r} is not a number from {MIN_TIME_SCALE:g} to "
                f"{MAX_TIME_SCALE:g}",
                hint=f"unset {TIME_SCALE_ENV}, or set it to the simulator's --speed",
            )
        return cls().scaled(speed)
