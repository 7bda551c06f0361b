"""The build claim's liveness: a killed build's claim is taken over within a few heartbeats,
a live one never is (whatever its owner's clock says), and a slow owner that lost its claim
stops rather than build a second snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

from hk8s.config import parse_config
from hk8s.controller.image._claim import HEARTBEAT_LABEL, STALE_BEATS, ClaimWatch
from hk8s.errors import UnavailableError
from hk8s.model import ManualClock, Timing
from hk8s.model.labels import label_problems
from hk8s.model.resources import Server, SSHKey

from .conftest import MachineShell  # type: ignore[import-not-found]
from .test_ensure import MIXED  # type: ignore[import-not-found]

INTERVAL = Timing().claim_heartbeat_interval
STALE = STALE_BEATS * INTERVAL  # 120 s
CLAIM = "hk8s-build-talos-v1.12.0-amd64-376567988ad3"


def test_a_heartbeat_that_keeps_changing_is_never_stale() -> None:
    clock = ManualClock(start=1_800_000_000.0, auto=False)
    watch = ClaimWatch(STALE)
    for number in range(20):  # ten minutes of beats every 30 s
        assert not watch.stale({HEARTBEAT_LABEL: f"1800000000-{number}"}, clock.now())
        clock.advance(INTERVAL)


def test_an_unchanged_heartbeat_is_stale_after_four_intervals_of_the_waiters_clock() -> None:
    clock = ManualClock(start=500.0, auto=False)
    watch = ClaimWatch(STALE)
    labels = {HEARTBEAT_LABEL: "1800000000-3"}
    assert not watch.stale(labels, clock.now())  # first sight: its age is unknown, not old
    clock.advance(STALE - 1)
    assert not watch.stale(labels, clock.now())
    clock.advance(1)
    assert watch.stale(labels, clock.now())
    assert watch.idle(clock.now()) == STALE
    # A beat after all (a slow owner) restarts the count.
    assert not watch.stale({HEARTBEAT_LABEL: "1800000000-4"}, clock.now())
    clock.advance(STALE - 1)
    assert not watch.stale({HEARTBEAT_LABEL: "1800000000-4"}, clock.now())


def test_the_owners_clock_does_not_matter_only_whether_its_beat_changes() -> None:
    """A day ahead or a day behind: the waiter never compares the label's time with its own."""
    clock = ManualClock(start=1_800_000_000.0, auto=False)
    ahead, behind = ClaimWatch(STALE), ClaimWatch(STALE)
    future = {HEARTBEAT_LABEL: "1800086400-9"}  # written by a dead owner a day ahead
    for number in range(10):
        past = {HEARTBEAT_LABEL: f"1799913600-{number}"}  # a live owner a day behind
        assert not behind.stale(past, clock.now())
        ahead.stale(future, clock.now())
        clock.advance(INTERVAL)
    assert ahead.stale(future, clock.now())


def test_a_claim_without_a_heartbeat_is_left_to_the_hour_rule() -> None:
    """Keys of an hk8s from before heartbeats: the watch never calls them stale itself."""
    watch = ClaimWatch(STALE)
    assert not watch.stale({}, 0.0)
    assert not watch.stale({}, 10 * STALE)


def _dead_claim(harness: Any) -> None:
    """What a build SIGKILLed after powering on its server leaves: the claim key (its last
    heartbeat never refreshed again) and the build server, both younger than an hour."""
    created = str(int(harness.clock.now() - 60))
    labels = {
        "managed-by": "hk8s",
        "hk8s/role": "image-build",
        "hk8s/build": "dead0001",
        "hk8s/created": created,
    }
    harness.fake.ssh_keys[901] = SSHKey(
        901, CLAIM, "fp", "ssh-ed25519 D", {**labels, HEARTBEAT_LABEL: f"{created}-1"}
    )
    harness.fake.servers[902] = Server(
        902, "hk8s-build-amd64-dead0001", "running", "cx23", "fsn1", labels
    )


async def test_a_killed_builds_claim_is_taken_over_within_a_few_heartbeats(harness: Any) -> None:
    """It used to be respected until it was an hour old: a re-run after Ctrl-C waited 3600 s."""
    _dead_claim(harness)
    start = harness.clock.now()
    images = await harness.builds().ensure(parse_config(MIXED), archs=["amd64"])
    waited = harness.clock.now() - start
    assert STALE <= waited <= STALE + 2 * INTERVAL, waited
    assert len(harness.fake.images) == 1 and images["amd64"].id in harness.fake.images
    # The dead build's server and key are gone, and so are the new build's own.
    assert harness.fake.servers == {} and harness.fake.ssh_keys == {}
    details = [e.detail or "" for e in harness.reporter.events]
    assert any(f"build claim {CLAIM} is stale (no heartbeat for 120 s)" in d for d in details)
    assert "delete_server" in [name for name, _ in harness.fake.calls]


async def test_the_heartbeat_label_values_are_valid_hetzner_labels(harness: Any) -> None:
    seen: list[dict[str, str]] = []
    gate = asyncio.Event()
    harness.shell_options["gate"] = gate
    task = asyncio.create_task(harness.builds().ensure(parse_config(MIXED), archs=["amd64"]))
    while len(seen) < 3:
        await asyncio.sleep(0)
        seen = [dict(args[2]) for name, args in harness.fake.calls if name == "set_labels"]
    gate.set()
    await task
    beats = [labels[HEARTBEAT_LABEL] for labels in seen]
    assert len(set(beats)) == len(beats)  # every beat differs, even within one second
    assert all(label_problems(labels) == [] for labels in seen)


async def test_a_live_build_held_far_longer_than_the_stale_limit_is_not_taken_over(
    harness: Any,
) -> None:
    """Two concurrent builds still build once: the owner's heartbeat keeps its claim alive
    while it is stuck (here: 10 minutes at its SSH connect), with its clock 30 minutes slow."""
    gate = asyncio.Event()
    config = parse_config(MIXED)
    first = asyncio.create_task(
        harness.builds(
            shell_factory=lambda: MachineShell(gate=gate),
            wall=lambda: harness.clock.now() - 1800,
        ).ensure(config, archs=["amd64"])
    )
    while "create_server" not in [name for name, _ in harness.fake.calls]:
        await asyncio.sleep(0)
    ids = iter(f"z{i:03d}" for i in range(10))
    second = asyncio.create_task(
        harness.builds(new_id=lambda: next(ids), shell_factory=MachineShell).ensure(
            config, archs=["amd64"]
        )
    )
    start = harness.clock.now()
    while harness.clock.now() - start < 10 * STALE:
        await asyncio.sleep(0)
    gate.set()
    one, two = await asyncio.gather(first, second)
    assert one["amd64"].id == two["amd64"].id
    assert len(harness.fake.images) == 1
    assert [n for n, _ in harness.fake.calls].count("create_server") == 1
    assert [n for n, _ in harness.fake.calls].count("delete_ssh_key") == 1  # its own, at the end
    assert harness.fake.servers == {} and harness.fake.ssh_keys == {}


async def test_a_slow_owner_that_lost_its_claim_stops_and_waits_for_the_new_owner(
    harness: Any,
) -> None:
    """Its beats failed for longer than the stale limit (API trouble), so a waiter took over:
    at its next beat it finds its key gone, stops, cleans up and takes the new owner's
    snapshot. One snapshot, one build that finished."""
    gate = asyncio.Event()
    harness.fake.fail("set_labels", UnavailableError("503 from the API"), times=3 * STALE_BEATS)
    config = parse_config(MIXED)
    first = asyncio.create_task(
        harness.builds(shell_factory=lambda: MachineShell(gate=gate)).ensure(
            config, archs=["amd64"]
        )
    )
    while "create_server" not in [name for name, _ in harness.fake.calls]:
        await asyncio.sleep(0)
    ids = iter(f"z{i:03d}" for i in range(10))
    second = asyncio.create_task(
        harness.builds(new_id=lambda: next(ids), shell_factory=MachineShell).ensure(
            config, archs=["amd64"]
        )
    )
    one, two = await asyncio.gather(first, second)
    assert one["amd64"].id == two["amd64"].id
    assert len(harness.fake.images) == 1
    assert [n for n, _ in harness.fake.calls].count("create_server") == 2
    assert harness.fake.servers == {} and harness.fake.ssh_keys == {}
    details = [e.detail or "" for e in harness.reporter.events]
    assert any("could not refresh the build claim" in d for d in details)
    assert any("this build's claim was taken over" in d for d in details)
    gate.set()


async def test_a_snapshot_finished_between_the_look_and_the_claim_is_taken_not_rebuilt(
    harness: Any,
) -> None:
    """The other run finished and dropped its claim after this one looked for snapshots and
    before it claimed: the claim succeeds, and must not start a second build."""
    from .test_ensure import snapshot  # type: ignore[import-not-found]

    fake = harness.fake
    create_ssh_key = fake.create_ssh_key

    async def finished_meanwhile(spec: Any) -> Any:
        fake.images[77] = snapshot(77, "amd64")
        return await create_ssh_key(spec)

    fake.create_ssh_key = finished_meanwhile
    images = await harness.builds().ensure(parse_config(MIXED), archs=["amd64"])
    assert images["amd64"].id == 77
    assert "create_server" not in [name for name, _ in fake.calls]
    assert fake.servers == {} and fake.ssh_keys == {}


async def test_two_waiters_taking_over_one_dead_claim_build_once(harness: Any) -> None:
    """Both find the claim stale and delete it (by id: the second delete is a no-op); both
    claim anew, Hetzner's name uniqueness lets one win, and the other waits for it."""
    _dead_claim(harness)
    config = parse_config(MIXED)
    ids = iter(f"z{i:03d}" for i in range(10))
    one, two = await asyncio.gather(
        harness.builds().ensure(config, archs=["amd64"]),
        harness.builds(new_id=lambda: next(ids)).ensure(config, archs=["amd64"]),
    )
    assert one["amd64"].id == two["amd64"].id
    assert len(harness.fake.images) == 1
    calls = [name for name, _ in harness.fake.calls]
    assert calls.count("create_server") == 1
    assert calls.count("create_ssh_key") == 4  # both claimed before and after the takeover
    assert harness.fake.servers == {} and harness.fake.ssh_keys == {}


async def test_a_slow_owner_whose_server_the_new_owner_deleted_waits_rather_than_fails(
    harness: Any,
) -> None:
    """The takeover deletes the old owner's build server; the old owner's next call fails on
    it before its next beat. That failure is the takeover's doing: it waits for the new
    owner's snapshot instead of failing its run."""
    from hk8s.errors import NotFoundError

    gate = asyncio.Event()
    fake = harness.fake
    fake.fail("set_labels", UnavailableError("503 from the API"), times=3 * STALE_BEATS)

    class Fails(MachineShell):  # type: ignore[misc]
        async def connect(self, host: str, key: Any, **kw: Any) -> None:
            await gate.wait()
            raise NotFoundError("server not found")  # what its deleted server answers

    config = parse_config(MIXED)
    first = asyncio.create_task(harness.builds(shell_factory=Fails).ensure(config, archs=["amd64"]))
    while "create_server" not in [name for name, _ in fake.calls]:
        await asyncio.sleep(0)
    ids = iter(f"z{i:03d}" for i in range(10))
    second = asyncio.create_task(
        harness.builds(new_id=lambda: next(ids), shell_factory=MachineShell).ensure(
            config, archs=["amd64"]
        )
    )
    while "delete_server" not in [name for name, _ in fake.calls]:  # the takeover's
        await asyncio.sleep(0)
    fake._faults.clear()
    gate.set()
    one, two = await asyncio.gather(first, second)
    assert one["amd64"].id == two["amd64"].id
    assert len(fake.images) == 1
    assert fake.servers == {} and fake.ssh_keys == {}
