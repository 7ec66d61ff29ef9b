"""Weekly schedules: parsing, canonical text, and allowed_at across days and midnight."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facegate.enrollment.schedule import allowed_at, parse_schedule

# 2026-11-23 is a Monday.
MON, FRI, SAT, SUN = 23, 27, 28, 29


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute)


@pytest.mark.parametrize(
    ("schedule", "moment", "allowed"),
    [
        ("mon-fri 07:00-19:00", at(MON, 7), True),
        ("mon-fri 07:00-19:00", at(MON, 6, 59), False),
        ("mon-fri 07:00-19:00", at(FRI, 18, 59), True),
        ("mon-fri 07:00-19:00", at(FRI, 19), False),  # the end is exclusive
        ("mon-fri 07:00-19:00", at(SAT, 12), False),
        ("mon-fri 07:00-19:00; sat 09:00-12:00", at(SAT, 9, 30), True),
        ("mon-fri 07:00-19:00; sat 09:00-12:00", at(SAT, 12, 30), False),
        ("fri 22:00-02:00", at(FRI, 23), True),
        ("fri 22:00-02:00", at(SAT, 1, 59), True),  # overnight into Saturday
        ("fri 22:00-02:00", at(SAT, 2), False),
        ("fri 22:00-02:00", at(MON, 1), False),
        ("sun 22:00-06:00", at(MON, 5), True),  # wraps from Sunday into Monday
        ("fri-mon 10:00-11:00", at(SUN, 10, 30), True),
        ("fri-mon 10:00-11:00", at(MON + 1, 10, 30), False),
        ("mon,wed 00:00-24:00", at(MON, 23, 59), True),
        ("daily 08:00-09:00", at(SUN, 8), True),
        ("sat", at(SAT, 0), True),
        ("Saturday 09:00-10:00", at(SAT, 9), True),
        (None, at(SUN, 3), True),
        ("", at(SUN, 3), True),
    ],
)
def test_allowed_at(schedule: str | None, moment: datetime, allowed: bool) -> None:
    assert allowed_at(schedule, moment) is allowed


def test_aware_datetimes_use_their_own_wall_clock() -> None:
    assert allowed_at("mon 07:00-08:00", datetime(2026, 11, 23, 7, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    "text",
    [
        "mon-fri 07:00-19:00",
        "mon-fri 07:00-19:00; sat 09:00-12:00",
        "fri 22:00-02:00",
        "daily 00:00-24:00",
        "mon,wed,fri 06:30-07:45",
    ],
)
def test_canonical_text_round_trips(text: str) -> None:
    parsed = parse_schedule(text)
    assert str(parsed) == text
    assert parse_schedule(str(parsed)) == parsed


@pytest.mark.parametrize(
    "bad",
    [
        ";",
        "someday 07:00-08:00",
        "mon 7-8",
        "mon 07:00",
        "mon 25:00-26:00",
        "mon 07:60-08:00",
        "mon 08:00-08:00",
        "mon 24:00-01:00",
        "mon 07:00-08:00 extra",
    ],
)
def test_bad_schedules_name_the_problem(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(bad)
    with pytest.raises(ValueError):
        allowed_at(bad, at(MON, 7))
