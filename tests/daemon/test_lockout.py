"""The lockout state machine."""

from facegate.daemon.lockout import LockoutRule, LockoutState, record_failure, release_expired

RULE = LockoutRule(max_failures=3, window_s=60, duration_s=300)


def test_engages_after_n_failures_within_window() -> None:
    state = LockoutState()
    for t in (0, 10, 20):
        assert not state.is_locked(t)
        state = record_failure(state, t, RULE)
    assert state.is_locked(21)
    assert state.is_locked(319)
    assert not state.is_locked(320)


def test_old_failures_fall_out_of_the_window() -> None:
    state = LockoutState()
    for t in (0, 50, 100, 150):
        state = record_failure(state, t, RULE)
    assert not state.is_locked(151)
    assert state.failures == (100, 150)


def test_release_and_round_trip() -> None:
    state = LockoutState(failures=(1.0,), locked_until=100.0)
    assert LockoutState.from_dict(state.to_dict()) == state
    same, released = release_expired(state, 50)
    assert same == state and not released
    cleared, released = release_expired(state, 100)
    assert released and cleared.locked_until is None and not cleared.is_locked(100)
