"""``Timing.scaled``: the simulated world's schedule, and the wall time it cannot shrink."""

from __future__ import annotations

import pytest

from hk8s.model.timing import SCALED_CLUSTER_TIMEOUT_FLOOR, Timing


def test_scaled_divides_the_schedule_but_keeps_a_wall_floor_under_cluster_waits() -> None:
    fast = Timing().scaled(100)
    assert fast.request_timeout == pytest.approx(0.3)
    assert fast.cluster_poll_interval == pytest.approx(0.01)
    assert fast.retry_attempts == Timing().retry_attempts
    # 1200 s / 100 would be 12 s: less than the real kube-apiserver may take to start.
    assert fast.cluster_timeout == SCALED_CLUSTER_TIMEOUT_FLOOR
    assert Timing().scaled(3).cluster_timeout == pytest.approx(400)  # above the floor
    assert Timing(cluster_timeout=10.0).scaled(100).cluster_timeout == 10.0  # never above its own


def test_retry_delay_doubles_from_initial_up_to_its_cap() -> None:
    timing = Timing(retry_initial=1.0, retry_max=30.0)
    assert [timing.retry_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
