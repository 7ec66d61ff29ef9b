"""The access policy applied after identity: is this verified user allowed in now? (pure)"""

from __future__ import annotations

import logging
from datetime import datetime

from facegate.daemon.decision import DecisionReason
from facegate.enrollment.schedule import allowed_at
from facegate.storage.records import User

logger = logging.getLogger(__name__)


def check_user(user: User, now: datetime) -> DecisionReason | None:
    """None when ``user`` may enter at ``now`` (aware, in the site's local time), else why not.

    Before ``valid_from`` or from ``valid_until`` on is ``expired``; a schedule that cannot be
    parsed denies (deny on doubt).
    """
    if not user.active:
        return DecisionReason.DISABLED
    if user.valid_from is not None and now < user.valid_from:
        return DecisionReason.EXPIRED
    if user.valid_until is not None and now >= user.valid_until:
        return DecisionReason.EXPIRED
    try:
        allowed = allowed_at(user.schedule, now)
    except ValueError as err:
        logger.warning("user %d has an unreadable schedule (%s): denying", user.id, err)
        return DecisionReason.OUTSIDE_SCHEDULE
    return None if allowed else DecisionReason.OUTSIDE_SCHEDULE


class GrantCooldown:
    """Remembers recent grants so one person standing at the door does not re-open it."""

    def __init__(self, cooldown_s: float) -> None:
        self._cooldown_s = cooldown_s
        self._last: dict[int, float] = {}

    def should_open(self, user_id: int, now: float) -> bool:
        """True when the door should open for ``user_id`` at monotonic time ``now``."""
        last = self._last.get(user_id)
        if last is not None and now - last < self._cooldown_s:
            return False
        self._last = {u: t for u, t in self._last.items() if now - t < self._cooldown_s}
        self._last[user_id] = now
        return True
