"""Cron schedules as a Kubernetes CronJob reads them, for ``backup.schedule``.

hk8s validates a schedule before it reaches the cluster (a CronJob the API server refuses would
fail ``create`` late, after the servers), and the simulator fires the CronJob at the times kube-
controller-manager would. Kubernetes parses with robfig/cron/v3's standard parser
(``pkg/controller/cronjob/utils.go``, ``cron.ParseStandard``): five fields (minute, hour, day of
month, month, day of week), ``*``, ``a-b``, ``*/n``, ``a-b/n``, lists, month and day names, ``?``
as ``*``, days of week 0-6 (7 is refused, as robfig's bounds do), and the descriptors
``@yearly``..``@hourly`` (robfig's ``@every <duration>`` is refused: hk8s keeps to calendar
schedules, which every reader of the config understands). Time zones (``CRON_TZ=``) are not
accepted here: the CronJob's ``timeZone`` field would be the place, and hk8s schedules in UTC. As
in cron, when both day fields are restricted, a day matching either one runs.

>>> schedule = parse_cron("*/15 2 * * mon-fri")
>>> schedule.next_after(dt.datetime(2026, 12, 7, 2, 20, tzinfo=dt.UTC))
datetime.datetime(2026, 12, 7, 2, 30, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["CronError", "CronSchedule", "parse_cron"]

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names) per field, in order.
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


class CronError(ValueError):
    """A schedule that is not a valid five-field cron expression; the message says where."""


@dataclass(frozen=True)
class CronSchedule:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'

    def matches(self, when: dt.datetime) -> bool:
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self._day_ok(when)
        )

    def next_after(self, when: dt.datetime) -> dt.datetime:
        """The first minute strictly after ``when`` the schedule fires (UTC, seconds zero)."""
        candidate = when.astimezone(dt.UTC).replace(second=0, microsecond=0)
        candidate += dt.timedelta(minutes=1)
        # Skip whole days/hours that cannot match, so even '0 0 29 2 *' is found quickly.
        for _ in range(366 * 24 * 60 * 5):
            if candidate.month not in self.months or not self._day_ok(candidate):
                candidate = (candidate + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if candidate.hour not in self.hours:
                candidate = (candidate + dt.timedelta(hours=1)).replace(minute=0)
                continue
            if candidate.minute in self.minutes:
                return candidate
            candidate += dt.timedelta(minutes=1)
        raise CronError(f"{self.text!r} never fires")

    def _day_ok(self, when: dt.datetime) -> bool:
        day = when.day in self.days
        weekday = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


def _value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if field == "month" else 0)
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number" + (
            f" or a name ({', '.join(names)})" if names else ""))  # fmt: skip
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{field}: {number} is outside {low}-{high}")
    return number


def _field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    found: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if span in ("*", "?"):
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = (_value(a, field, low, high, names), _value(b, field, low, high, names))
            if first > last:
                raise CronError(f"{field}: range {span!r} runs backwards")
        elif span:
            first = _value(span, field, low, high, names)
            last = high if step_text else first
        else:
            raise CronError(f"{field}: empty value in {text!r}")
        found.update(range(first, last + 1, step))
    return found


def parse_cron(text: str) -> CronSchedule:
    """Parse a CronJob schedule; ``CronError`` names the field that is wrong."""
    expression = _DESCRIPTORS.get(text.strip().lower(), text.strip())
    if expression.startswith("@"):
        raise CronError(
            f"unknown descriptor {text!r}; use one of {', '.join(_DESCRIPTORS)} or five fields"
        )
    if expression.upper().startswith(("CRON_TZ=", "TZ=")):
        raise CronError("time zones are not accepted: schedules are in UTC")
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
    return CronSchedule(
        text=text,
        minutes=frozenset(sets[0]),
        hours=frozenset(sets[1]),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=frozenset(sets[4]),
        # robfig/cron's starBit: a field starting with * or ? (also '*/2') does not widen the
        # other day field.
        any_day=parts[2].startswith(("*", "?")),
        any_weekday=parts[4].startswith(("*", "?")),
    )
