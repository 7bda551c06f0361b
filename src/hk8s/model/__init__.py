"""hk8s' own types: what the controller and providers exchange, never library objects."""

from __future__ import annotations

from hk8s.model.clock import Clock, ManualClock, ScaledClock, SystemClock
from hk8s.model.timing import TIME_SCALE_ENV, Timing

__all__ = ["TIME_SCALE_ENV", "Clock", "ManualClock", "ScaledClock", "SystemClock", "Timing"]
