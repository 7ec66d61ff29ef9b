"""Frame and burst decisions as tables."""

import pytest

from facegate.daemon.decision import BurstJudge, DecisionReason, FrameVerdict, judge_frame
from facegate.daemon.matching import FrameMatch, UserScore
from facegate.model.manifest import Thresholds

R = DecisionReason
THR = Thresholds(detection=0.8, verification=0.5)


def user(uid: int, share: float, best: float) -> UserScore:
    return UserScore(index=uid, user_id=uid, name=f"u{uid}", share=share, best=best, mean=best)


@pytest.mark.parametrize(
    ("ranked", "reason", "verified"),
    [
        ((), R.UNKNOWN_FACE, None),
        ((user(1, 0.0, 0.3),), R.UNKNOWN_FACE, None),
        ((user(1, 0.4, 0.9),), R.BELOW_THRESHOLD, None),
        ((user(1, 0.5, 0.95),), R.GRANTED, 1),
        ((user(1, 1.0, 0.99), user(2, 0.0, 0.5)), R.GRANTED, 1),
        ((user(1, 1.0, 0.99), user(2, 0.6, 0.9)), R.AMBIGUOUS, None),
        ((user(1, 1.0, 0.81),), R.AMBIGUOUS, None),
        ((user(1, 1.0, 0.95), user(2, 0.2, 0.94)), R.AMBIGUOUS, None),
    ],
    ids=[
        "no-galleries",
        "nothing-matches",
        "share-below",
        "share-at-threshold",
        "clear-winner",
        "two-pass",
        "by-a-hair",
        "runner-up-close",
    ],
)
def test_judge_frame(ranked, reason, verified) -> None:
    verdict = judge_frame(FrameMatch(ranked=ranked), THR, margin=0.02)
    assert verdict.reason is reason
    assert (verdict.verified.user_id if verdict.verified else None) == verified
    if ranked:
        assert verdict.candidate == ranked[0]


def granted(uid: int) -> FrameVerdict:
    u = user(uid, 1.0, 0.97)
    return FrameVerdict(R.GRANTED, verified=u, candidate=u)


def denied(reason: DecisionReason) -> FrameVerdict:
    return FrameVerdict(reason, candidate=user(5, 0.1, 0.5) if reason != R.NO_FACE else None)


@pytest.mark.parametrize(
    ("agreement", "max_frames", "frames", "reason", "decided_at"),
    [
        (2, 5, [granted(1), granted(1)], R.GRANTED, 2),
        (2, 5, [denied(R.NO_FACE), granted(1), granted(1)], R.GRANTED, 3),
        (2, 1, [granted(1)], R.GRANTED, 1),
        (2, 5, [granted(1), granted(2)], R.AMBIGUOUS, 2),
        (1, 3, [denied(R.NO_FACE), denied(R.NO_FACE), denied(R.NO_FACE)], R.NO_FACE, 3),
        (
            2,
            3,
            [denied(R.NO_FACE), denied(R.UNKNOWN_FACE), denied(R.POOR_QUALITY)],
            R.UNKNOWN_FACE,
            3,
        ),
        (
            2,
            3,
            [denied(R.UNKNOWN_FACE), denied(R.BELOW_THRESHOLD), granted(1)],
            R.BELOW_THRESHOLD,
            3,
        ),
    ],
    ids=[
        "two-agree",
        "late-agree",
        "one-frame-burst",
        "two-users",
        "faceless",
        "unknown-beats-quality",
        "below-beats-lone-grant",
    ],
)
def test_burst(agreement, max_frames, frames, reason, decided_at) -> None:
    judge = BurstJudge(agreement=agreement, max_frames=max_frames)
    decision = None
    for i, frame in enumerate(frames, start=1):
        decision = judge.add(frame)
        if decision is not None:
            assert i == decided_at
            break
    assert decision is not None
    assert decision.reason is reason
    assert decision.frames == decided_at
    assert (decision.user is not None) == (reason is R.GRANTED)


def test_burst_finish_early_on_timeout() -> None:
    judge = BurstJudge(agreement=2, max_frames=5)
    assert judge.add(granted(1)) is None
    decision = judge.finish()
    assert decision.reason is R.BELOW_THRESHOLD
    assert decision.user is None
    assert decision.candidate is not None and decision.candidate.user_id == 1
