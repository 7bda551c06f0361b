"""Cron schedules as a CronJob (robfig/cron's standard parser) reads them."""

from __future__ import annotations

import datetime as dt

import pytest

from hk8s.model.cron import CronError, parse_cron

T = dt.datetime(2026, 12, 7, 9, 17, tzinfo=dt.UTC)  # a Monday


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("*/15 * * * *", dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)),
        ("@hourly", dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)),
        ("0 3 * * *", dt.datetime(2026, 12, 8, 3, 0, tzinfo=dt.UTC)),
        ("30 2 * * sat,sun", dt.datetime(2026, 12, 12, 2, 30, tzinfo=dt.UTC)),
        ("0 0 1 jan *", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
        ("0 0 29 2 *", dt.datetime(2028, 2, 29, tzinfo=dt.UTC)),
        # both day fields restricted: either matches (the 10th, or the next Wednesday)
        ("0 0 10 * 3", dt.datetime(2026, 12, 9, tzinfo=dt.UTC)),
        # '*/2' in day of month counts as starred: weekday must match as well
        ("0 0 */2 * 5", dt.datetime(2026, 12, 11, tzinfo=dt.UTC)),
    ],
)
def test_next_run(schedule: str, expected: dt.datetime) -> None:
    assert parse_cron(schedule).next_after(T) == expected


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("0 24 * * *", "hour: 24"),
        ("0 0 * * 7", "day of week: 7 is outside 0-6"),
        ("0 0 * foo *", "month: 'foo' is not a number or a name"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("@every 1h", "unknown descriptor"),
        ("CRON_TZ=Europe/Berlin 0 * * * *", "time zones"),
    ],
)
def test_bad_schedules_say_which_field(schedule: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(schedule)
