"""Weekly access schedules: parse "mon-fri 07:00-19:00; sat 09:00-12:00" and test a time.

Pure functions, no I/O. A schedule is one or more spans separated by ``;``. A span is a day
set (``mon``, ``mon-fri``, ``fri-mon``, ``mon,wed,fri``, ``daily``) and a time range
``HH:MM-HH:MM``; an end before the start runs overnight into the next day ("fri 22:00-02:00"
allows Friday 22:00 to Saturday 02:00); ``24:00`` is the end of the day; ``00:00-24:00`` or the
range left out means the whole day. Times are wall-clock times of the datetime given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Span:
    """Allowed minutes ``[start, end)`` after midnight on each of ``days`` (0=Monday).

    ``end`` may be up to 2 * 1440: a span past midnight continues on the next day.
    """

    days: frozenset[int]
    start: int
    end: int

    def __str__(self) -> str:
        """Canonical text of the span, e.g. ``mon-fri 07:00-19:00``."""
        end = self.end - _MINUTES_PER_DAY if self.end > _MINUTES_PER_DAY else self.end
        return f"{_days_text(self.days)} {_clock(self.start)}-{_clock(end)}"


@dataclass(frozen=True)
class WeeklySchedule:
    """A set of spans; a moment is allowed when any span covers it."""

    spans: tuple[Span, ...]

    def __str__(self) -> str:
        """Canonical text, parseable by ``parse_schedule``."""
        return "; ".join(str(span) for span in self.spans)

    def allows(self, moment: datetime) -> bool:
        """True when ``moment`` (its own wall clock) falls inside one of the spans."""
        day = moment.weekday()
        minute = moment.hour * 60 + moment.minute
        for span in self.spans:
            if day in span.days and span.start <= minute < span.end:
                return True
            yesterday = (day - 1) % 7
            if yesterday in span.days and minute + _MINUTES_PER_DAY < span.end:
                return True
        return False


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days_text(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "daily"
    ordered = sorted(days)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
        return f"{DAYS[ordered[0]]}-{DAYS[ordered[-1]]}"
    return ",".join(DAYS[d] for d in ordered)


def _parse_day(text: str) -> int:
    key = text.strip().lower()
    if key in DAYS:
        return DAYS.index(key)
    if key in _FULL_DAYS:
        return _FULL_DAYS.index(key)
    raise ValueError(f"unknown day {text.strip()!r} (use mon, tue, wed, thu, fri, sat, sun)")


def _parse_days(text: str) -> frozenset[int]:
    text = text.strip().lower()
    if text in ("daily", "every day", "*", "all"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, last = (_parse_day(p) for p in part.split("-", 1))
            days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
        else:
            days.add(_parse_day(part))
    return frozenset(days)


def _parse_clock(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"bad time {text.strip()!r} (use HH:MM)")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > _MINUTES_PER_DAY:
        raise ValueError(f"bad time {text.strip()!r} (00:00 to 24:00)")
    return value


def _parse_span(text: str) -> Span:
    parts = text.split()
    if not parts:
        raise ValueError("empty span")
    if len(parts) > 2:
        raise ValueError(f"bad span {text.strip()!r} (use e.g. 'mon-fri 07:00-19:00')")
    days = _parse_days(parts[0])
    if len(parts) == 1:
        return Span(days, 0, _MINUTES_PER_DAY)
    start_text, sep, end_text = parts[1].partition("-")
    if not sep:
        raise ValueError(f"bad time range {parts[1]!r} (use HH:MM-HH:MM)")
    start, end = _parse_clock(start_text), _parse_clock(end_text)
    if start == _MINUTES_PER_DAY:
        raise ValueError("a span cannot start at 24:00")
    if end == start:
        raise ValueError(f"empty time range {parts[1]!r}")
    if end < start:
        end += _MINUTES_PER_DAY  # overnight: runs into the next day
    return Span(days, start, end)


def parse_schedule(text: str) -> WeeklySchedule:
    """Parse schedule text; raise ValueError naming the bad part."""
    spans = [s for s in text.split(";") if s.strip()]
    if not spans:
        raise ValueError("a schedule needs at least one span, e.g. 'mon-fri 07:00-19:00'")
    return WeeklySchedule(tuple(_parse_span(s) for s in spans))


def allowed_at(schedule: str | WeeklySchedule | None, moment: datetime) -> bool:
    """True when ``moment`` is inside the schedule; no schedule (None or "") allows any time.

    ``moment``'s own wall clock is used: convert it to the site's local time zone first.
    """
    if schedule is None or (isinstance(schedule, str) and not schedule.strip()):
        return True
    parsed = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    return parsed.allows(moment)
