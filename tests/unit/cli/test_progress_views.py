"""Progress a person can read at 100 nodes: phases with counts and durations, the steps
waiting longest, a frame that fits the terminal, and short logs that still show a stuck node.

The events follow ``create``'s pattern for 3 + 97 nodes (planned steps, concurrent starts,
a node whose Talos API never answers), on a ``ManualClock`` so durations are exact.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console

from hk8s.cli._live import LiveReporter
from hk8s.cli._phases import PhaseBoard, clock_text
from hk8s.cli._progress import JsonLinesReporter, PlainReporter
from hk8s.controller import ProgressEvent
from hk8s.model import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hk8s.cli._progress import RunReporter

NODES = [f"demo-cp-{i}" for i in range(1, 4)] + [f"demo-workers-{i}" for i in range(1, 98)]
STUCK = "demo-workers-50"


def pause(clock: ManualClock, seconds: float) -> Iterator[None]:
    """Time passes (``None``: a moment to tick), at most 10 s at a time."""
    while seconds > 0:
        clock.advance(min(10.0, seconds))
        seconds -= 10.0
        yield None


def create_run(clock: ManualClock, *, stop_at: str | None = None) -> Iterator[ProgressEvent | None]:
    """Events as create emits them, with ``None`` whenever time passed.

    ``stop_at``: stop before the first event of that phase (the run is still going)."""

    def ev(kind: str, key: str, title: str, detail: str | None = None, phase: str = "") -> Any:
        return ProgressEvent(kind, key, title, detail, phase)  # type: ignore[arg-type]

    yield ev("warning", "", "warning", "a Hetzner load balancer is not covered by the firewall")
    yield ev("planned", "image/talos-amd64", "create image talos-amd64")
    yield ev("started", "image/talos-amd64", "create image talos-amd64")
    yield from pause(clock, 45)
    yield ev("done", "image/talos-amd64", "create image talos-amd64")
    infra = ["network/demo", "firewall/demo-fw", "load-balancer/demo-api"]
    for key in infra:
        yield ev("planned", key, f"create {key}")
    for name in NODES:
        yield ev("planned", f"server/{name}", f"create server {name}")
    for key in infra:
        yield ev("started", key, f"create {key}")
        yield from pause(clock, 1)
        yield ev("done", key, f"create {key}")
    for i, name in enumerate(NODES):
        yield ev("started", f"server/{name}", f"create server {name}")
        if i >= 16:
            done = NODES[i - 16]
            yield from pause(clock, 2)
            yield ev("done", f"server/{done}", f"create server {done}")
    for name in NODES[-16:]:
        yield from pause(clock, 1)
        yield ev("done", f"server/{name}", f"create server {name}")
    if stop_at == "machine configs":
        return
    for name in NODES:
        yield ev("planned", f"node/{name}", f"apply machine config to {name}")
    for name in NODES:
        key = f"node/{name}"
        yield ev("waiting", key, f"Talos API of {name} to answer", "connection refused")
        if name == STUCK:
            continue
        yield from pause(clock, 1)
        yield ev("done", key, f"Talos API of {name} to answer")
        yield ev("started", key, f"apply machine config to {name}")
        yield ev("done", key, f"apply machine config to {name}", "maintenance mode")
    yield from pause(clock, 600)
    yield ev("failed", f"node/{STUCK}", f"Talos API of {STUCK} to answer", "timed out after 10m")


def feed(reporter: RunReporter, clock: ManualClock, **kw: Any) -> None:
    for event in create_run(clock, **kw):
        if event is None:
            reporter.tick()
        else:
            reporter.emit(event)


def frame(live: LiveReporter, width: int, height: int) -> list[str]:
    """The live view's current frame as a fixed-size terminal shows it."""
    screen = Console(record=True, width=width, height=height, file=io.StringIO())
    screen.print(live.view())
    return screen.export_text().splitlines()


def live_reporter(clock: ManualClock, width: int = 100, height: int = 24) -> LiveReporter:
    console = Console(
        record=True, width=width, height=height, file=io.StringIO(), force_terminal=True
    )
    return LiveReporter(PhaseBoard(clock), console, start=False)


def test_live_view_fits_the_terminal_with_counts_durations_and_the_stuck_node() -> None:
    clock = ManualClock()
    live = live_reporter(clock)
    for n, event in enumerate(create_run(clock)):
        if event is None:
            continue
        if event.kind == "failed":
            break
        live.emit(event)
        if n % 7 == 0:
            lines = frame(live, 100, 24)
            assert len(lines) <= 23, "\n".join(lines)
    text = "\n".join(frame(live, 100, 24))
    assert "servers" in text and "100/100" in text
    assert "in 0:45" in text  # snapshots, finished: one line with its duration
    assert "machine configs" in text and "99/100" in text
    assert STUCK in text
    live.emit(ProgressEvent("failed", f"node/{STUCK}", "Talos API to answer", "timed out"))
    text = "\n".join(frame(live, 100, 24))
    assert "1 failed" in text and "1 failure(s) above" in text


def test_live_view_names_the_node_waiting_longest_and_how_long() -> None:
    clock = ManualClock()
    live = live_reporter(clock)
    since = 0.0
    for event in create_run(clock):
        if event is None:
            continue
        if event.kind == "failed":
            break
        live.emit(event)
        if event.key == f"node/{STUCK}" and event.kind == "waiting":
            since = clock.now()
    clock.advance(250)
    text = "\n".join(frame(live, 100, 24))
    assert "waiting longest" in text
    row = next(line for line in text.splitlines() if STUCK in line)
    assert "Talos API of demo-workers-50 to answer" in row
    assert row.split()[0] == clock_text(clock.now() - since)


@pytest.mark.parametrize(("width", "height"), [(80, 3), (80, 4), (40, 8), (60, 12), (160, 50)])
def test_no_frame_is_taller_than_the_terminal(width: int, height: int) -> None:
    clock = ManualClock()
    live = live_reporter(clock, width=width, height=height)
    for n, event in enumerate(create_run(clock)):
        if event is not None:
            live.emit(event)
        if n % 13 == 0:
            lines = frame(live, width, height)
            assert len(lines) < height, "\n".join(lines)


def test_live_view_folds_finished_phases_on_a_short_terminal() -> None:
    clock = ManualClock()
    live = live_reporter(clock, height=6)
    feed(live, clock)
    lines = frame(live, 100, 6)
    assert len(lines) <= 5
    assert "phases done" in lines[0] or "snapshots" in lines[0]


def test_plain_log_is_short_names_phases_and_says_what_it_still_waits_for() -> None:
    clock = ManualClock()
    stream = io.StringIO()
    plain = PlainReporter(PhaseBoard(clock), stream, interval=30)
    feed(plain, clock)
    plain.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) < 60, "\n".join(lines)
    text = "\n".join(lines)
    assert "ok  servers 100/100 in" in text
    assert "ERR Talos API of demo-workers-50 to answer: timed out" in text
    assert "phase durations" in text
    waiting = [line for line in lines if "still waiting" in line]
    assert waiting and all("demo-workers-50" in line for line in waiting[-1:])


def test_plain_log_with_verbose_has_a_line_per_step() -> None:
    clock = ManualClock()
    stream = io.StringIO()
    plain = PlainReporter(PhaseBoard(clock), stream, verbose=True)
    feed(plain, clock, stop_at="machine configs")
    assert stream.getvalue().count("create server demo-workers-") >= 97 * 2


def test_json_lines_carry_step_and_phase_durations_and_a_summary() -> None:
    clock = ManualClock()
    stream = io.StringIO()
    reporter = JsonLinesReporter(PhaseBoard(clock), stream)
    feed(reporter, clock, stop_at="machine configs")
    reporter.close()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    image = next(r for r in records if r["event"] == "done" and r["key"] == "image/talos-amd64")
    assert image["duration"] == 45.0
    assert image["phase"] == "snapshots"
    finished = {
        r["phase"]: r for r in records if r["event"] == "phase" and r["state"] == "finished"
    }
    assert finished["snapshots"]["duration"] == 45.0
    assert finished["servers"]["done"] == finished["servers"]["total"] == 100
    summary = records[-1]
    assert summary["event"] == "summary"
    assert [p["phase"] for p in summary["phases"]] == ["snapshots", "infrastructure", "servers"]


def test_a_sub_condition_does_not_finish_its_phase_early() -> None:
    clock = ManualClock()
    board = PhaseBoard(clock)
    board.record(ProgressEvent("planned", "node/a", "apply machine config to a"))
    board.record(ProgressEvent("waiting", "node/a", "Talos API of a to answer"))
    _, moves = board.record(ProgressEvent("done", "node/a", "Talos API of a to answer"))
    assert board.phases["machine configs"].completed == 0
    board.record(ProgressEvent("started", "node/a", "apply machine config to a"))
    board.record(ProgressEvent("done", "node/a", "apply machine config to a"))
    assert board.phases["machine configs"].counts() == "1/1"
    _, moves = board.record(ProgressEvent("waiting", "etcd", "etcd members"))
    assert [(m.kind, m.phase.name) for m in moves] == [
        ("finished", "machine configs"),
        ("started", "etcd"),
    ]


def test_the_json_result_of_a_command_carries_its_phase_durations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hk8s.cli._output import Output, OutputMode
    from hk8s.cli._progress import progress
    from hk8s.model import Timing

    clock = ManualClock()
    out = Output(mode=OutputMode.json)
    with progress(out, clock, Timing()) as reporter:
        reporter.emit(ProgressEvent("started", "server/demo-cp-1", "create server demo-cp-1"))
        clock.advance(42)
        reporter.emit(ProgressEvent("done", "server/demo-cp-1", "create server demo-cp-1"))
    out.result({"cluster": "demo"})
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["phases"] == [
        {"phase": "servers", "duration": 42.0, "done": 1, "total": 1, "failed": 0}
    ]
    last = json.loads(captured.err.splitlines()[-1])
    assert last["event"] == "summary" and last["phases"] == result["phases"]
