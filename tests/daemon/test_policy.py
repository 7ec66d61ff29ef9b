"""The access policy after identity, as a table."""

from datetime import UTC, datetime, timedelta

import pytest

from facegate.daemon.decision import DecisionReason as R
from facegate.daemon.policy import GrantCooldown, check_user
from facegate.storage.records import User

# A Wednesday, 10:00 UTC.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def user(**changes) -> User:
    base = {
        "id": 1,
        "name": "ada",
        "display_name": "Ada",
        "active": True,
        "valid_from": None,
        "valid_until": None,
        "schedule": None,
        "gallery_consent": False,
        "created_at": NOW - 30 * DAY,
        "updated_at": NOW - 30 * DAY,
    }
    return User(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"active": False}, R.DISABLED),
        ({"valid_until": NOW - DAY}, R.EXPIRED),
        ({"valid_until": NOW}, R.EXPIRED),
        ({"valid_until": NOW + DAY}, None),
        ({"valid_from": NOW + DAY}, R.EXPIRED),
        ({"valid_from": NOW - DAY, "valid_until": NOW + DAY}, None),
        ({"schedule": "mon-fri 07:00-19:00"}, None),
        ({"schedule": "sat-sun 07:00-19:00"}, R.OUTSIDE_SCHEDULE),
        ({"schedule": "wed 11:00-12:00"}, R.OUTSIDE_SCHEDULE),
        ({"schedule": "tue 22:00-10:30"}, None),
        ({"schedule": "not a schedule"}, R.OUTSIDE_SCHEDULE),
        ({"active": False, "schedule": "sat 09:00-10:00"}, R.DISABLED),
    ],
)
def test_check_user(changes: dict, reason: R | None) -> None:
    assert check_user(user(**changes), NOW) == reason


def test_grant_cooldown() -> None:
    cooldown = GrantCooldown(10.0)
    assert cooldown.should_open(1, 100.0)
    assert not cooldown.should_open(1, 105.0)
    assert cooldown.should_open(2, 105.0)
    assert cooldown.should_open(1, 110.0)
