"""The door's lockout rule as a pure state machine over epoch seconds.

After ``max_failures`` denied attempts within ``window_s``, verification is suspended for
``duration_s``. The state is small and plain so the daemon can persist it in the registry and
a restart does not lift a lockout.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LockoutRule:
    """``max_failures`` denials within ``window_s`` seconds lock the door for ``duration_s``."""

    max_failures: int = 5
    window_s: float = 120.0
    duration_s: float = 300.0


@dataclass(frozen=True)
class LockoutState:
    """Recent denial times (epoch s, oldest first) and the end of a running lockout, if any."""

    failures: tuple[float, ...] = field(default_factory=tuple)
    locked_until: float | None = None

    def is_locked(self, now: float) -> bool:
        """True while a lockout runs at ``now``."""
        return self.locked_until is not None and now < self.locked_until

    def to_dict(self) -> dict:
        """Plain form for persistence."""
        return {"failures": list(self.failures), "locked_until": self.locked_until}

    @classmethod
    def from_dict(cls, data: dict) -> LockoutState:
        """Inverse of ``to_dict``; tolerant of missing keys."""
        until = data.get("locked_until")
        return cls(
            failures=tuple(float(t) for t in data.get("failures", ())),
            locked_until=None if until is None else float(until),
        )


def record_failure(state: LockoutState, now: float, rule: LockoutRule) -> LockoutState:
    """Add a denial at ``now``; engage the lockout when the rule is met."""
    recent = (*(t for t in state.failures if now - t < rule.window_s), now)
    if len(recent) >= rule.max_failures:
        return LockoutState(failures=(), locked_until=now + rule.duration_s)
    return LockoutState(failures=recent, locked_until=state.locked_until)


def release_expired(state: LockoutState, now: float) -> tuple[LockoutState, bool]:
    """Clear a lockout that has run out; returns the new state and whether it was released."""
    if state.locked_until is not None and now >= state.locked_until:
        return LockoutState(failures=state.failures, locked_until=None), True
    return state, False
