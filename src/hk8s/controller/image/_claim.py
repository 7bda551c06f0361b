"""The liveness of an image build's claim: the owner's heartbeat, and a waiter's staleness rule.

A build claims its snapshot target by registering the SSH key named ``hk8s-build-<target>``
(Hetzner names are unique; ``image._build``). A run killed mid-build (SIGKILL, a CI timeout)
cannot delete its key, and a waiting run used to respect the claim until it was an hour old.

The owner now refreshes the claim while it lives: every ``Timing.claim_heartbeat_interval``
(30 s of the injectable clock) it writes a new value into the key's ``hk8s/heartbeat`` label
(``PUT /ssh_keys/{id}``). A waiter takes the claim over once that value has not changed for
``STALE_BEATS`` intervals (2 minutes) of *its own* clock.

Clock skew: the waiter never compares a time written by another machine with its own. The
label's value is ``<owner's UNIX seconds>-<beat number>``; the time is there for people reading
the label, the number makes every beat distinct even within one second (the simulator runs
time 100x faster). The waiter only asks whether the value *changed*, and measures how long it
has not on its own monotonic clock, as Kubernetes' leader election does with a lease's
``renewTime`` (client-go tools/leaderelection: "a client observes timestamps captured locally
... tolerant to arbitrary clock skew"). Hetzner's ``created`` time or the API's ``Date`` header
would also be skew-free, but they need no fewer intervals to tell a dead owner from a live one
that has not beaten yet, and would put a new field through the port. What the rule tolerates
is a skew *rate*: an owner whose clock runs 4x slower than the waiter's looks dead.

A claim without the label is from an hk8s before heartbeats: it stays stale only after
``leftover_age`` (one hour), by its ``hk8s/created`` label, as before.

Taking over is a delete of the stale key by its id followed by a new claim. Two waiters that
race both delete (the second gets NotFound, which is fine) and both claim anew; Hetzner's name
uniqueness lets one win and the other waits for it as for any live build. An owner that was
only slow (its beats failed for 2 minutes) finds its key gone at its next beat: it stops, its
cleanup deletes its server and unfinished snapshot, and it waits for the new owner
(``ClaimLost``). It checks the claim once more before it returns a finished snapshot, so a
takeover while the snapshot was being created cannot leave two.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hk8s.errors import NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hk8s.model.clock import Clock
    from hk8s.providers.hcloud import HcloudPort

__all__ = [
    "HEARTBEAT_LABEL",
    "STALE_BEATS",
    "ClaimHeartbeat",
    "ClaimLost",
    "ClaimWatch",
    "beat_value",
    "take_over",
]

HEARTBEAT_LABEL = "hk8s/heartbeat"
STALE_BEATS = 4  # intervals without a new beat before a claim is taken over


class ClaimLost(Exception):
    """This run's claim was taken over (its key is gone): another run builds the target."""


def beat_value(wall: float, number: int) -> str:
    """``1800000030-1``: a valid label value (digits and one '-', well below 63 characters)."""
    return f"{int(wall)}-{number}"


class ClaimHeartbeat:
    """The owner's side: rewrite the claim key's heartbeat label, ``ClaimLost`` once it is
    gone. Other failures are reported and the next beat tries again (the provider already
    retried the request): a waiter takes over only after ``STALE_BEATS`` missed beats."""

    def __init__(
        self,
        hcloud: HcloudPort,
        key_id: int,
        labels: Mapping[str, str],
        *,
        clock: Clock,
        interval: float,
        wall: Callable[[], float],
        warn: Callable[[str], None],
    ) -> None:
        self._hcloud = hcloud
        self._key_id = key_id
        self._labels = dict(labels)
        self._clock = clock
        self._interval = interval
        self._wall = wall
        self._warn = warn
        self._numbers = itertools.count(1)

    async def beat(self) -> None:
        labels = {**self._labels, HEARTBEAT_LABEL: beat_value(self._wall(), next(self._numbers))}
        try:
            await self._hcloud.set_labels("ssh-key", self._key_id, labels)
        except NotFoundError:
            raise ClaimLost(f"build claim (SSH key {self._key_id}) was taken over") from None

    async def confirm(self) -> None:
        """One more beat before a finished build returns: ``ClaimLost`` if it was taken over
        meanwhile. A beat that fails otherwise cannot tell, and the snapshot is kept."""
        try:
            await self.beat()
        except ClaimLost:
            raise
        except Exception as exc:
            self._warn(f"could not check the build claim before finishing: {exc}")

    async def lost(self) -> bool:
        """Whether the claim was taken over: after a failed build, its cause (the new owner
        deleted this build's server) is not an error of its own, and the run waits instead."""
        try:
            await self.beat()
        except ClaimLost:
            return True
        except Exception:
            return False
        return False

    async def run(self) -> None:
        """Beat until cancelled; returns only by raising ``ClaimLost``."""
        while True:
            await self._clock.sleep(self._interval)
            try:
                await self.beat()
            except ClaimLost:
                raise
            except Exception as exc:
                self._warn(f"could not refresh the build claim: {exc}; trying again")


@dataclass
class ClaimWatch:
    """A waiter's view of one claim: stale once its heartbeat has not changed for
    ``stale_after`` seconds of the waiter's clock (see the module docstring for why)."""

    stale_after: float
    seen: str | None = None
    since: float = field(default=0.0)
    started: bool = False

    def stale(self, labels: Mapping[str, str], now: float) -> bool:
        beat = labels.get(HEARTBEAT_LABEL)
        if not self.started or beat != self.seen:
            self.started, self.seen, self.since = True, beat, now
            return False
        return beat is not None and now - self.since >= self.stale_after

    def idle(self, now: float) -> float:
        """How long the heartbeat has not changed, as this waiter saw it."""
        return now - self.since if self.started else 0.0


async def take_over(hcloud: HcloudPort, key_id: int) -> None:
    """Delete a stale claim by its id (never by name: a newer claim has another id)."""
    with contextlib.suppress(NotFoundError):
        await hcloud.delete_ssh_key(key_id)
