"""From gallery matches to an identity decision, per frame and per burst (pure logic).

The seed's semantics hold: a comparison matches when its score reaches the detection
threshold, and a user is verified when the share of their gallery that matches reaches the
verification threshold. On top of that, deny on doubt: two users passing, or a runner-up
scoring within ``margin`` of the best, or the best passing by less than ``margin``, is
``ambiguous``; and a grant needs ``agreement`` frames of a burst naming the same user.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from facegate.daemon.matching import FrameMatch, UserScore
from facegate.model.manifest import Thresholds


class DecisionReason(StrEnum):
    """Why a decision came out as it did; stable strings used in the access log and MQTT."""

    GRANTED = "granted"
    REMOTE_UNLOCK = "remote_unlock"
    UNKNOWN_FACE = "unknown_face"
    BELOW_THRESHOLD = "below_threshold"
    AMBIGUOUS = "ambiguous"
    NO_LIVENESS = "no_liveness"
    OUTSIDE_SCHEDULE = "outside_schedule"
    DISABLED = "disabled"
    EXPIRED = "expired"
    LOCKED_OUT = "locked_out"
    NO_FACE = "no_face"
    POOR_QUALITY = "poor_quality"
    ERROR = "error"


# When a burst ends without a grant, the most telling frame reason is reported.
_DENY_PRIORITY = (
    DecisionReason.AMBIGUOUS,
    DecisionReason.BELOW_THRESHOLD,
    DecisionReason.UNKNOWN_FACE,
    DecisionReason.POOR_QUALITY,
    DecisionReason.NO_FACE,
)

# Denials that count towards a lockout: someone presented a face and was refused.
LOCKOUT_REASONS = frozenset(
    {
        DecisionReason.UNKNOWN_FACE,
        DecisionReason.BELOW_THRESHOLD,
        DecisionReason.AMBIGUOUS,
        DecisionReason.NO_LIVENESS,
    }
)


@dataclass(frozen=True)
class FrameVerdict:
    """One frame's identity answer: ``verified`` is set only when ``reason`` is GRANTED.

    ``candidate`` is the strongest user whatever the outcome (for the access log); ``score``
    is that user's best comparison score in [0, 1] (0 when there is none).
    """

    reason: DecisionReason
    verified: UserScore | None = None
    candidate: UserScore | None = None

    @property
    def score(self) -> float:
        """Best comparison score of the candidate, 0 without one."""
        return self.candidate.best if self.candidate else 0.0


def judge_frame(match: FrameMatch, thresholds: Thresholds, margin: float) -> FrameVerdict:
    """Decide one frame from its gallery match.

    ``margin`` is in score units (probability): the best user's best score must clear the
    detection threshold and the runner-up's best score by at least this much.
    """
    top, second = match.top, match.runner_up
    if top is None:
        return FrameVerdict(DecisionReason.UNKNOWN_FACE)
    if top.share < thresholds.verification:
        reason = DecisionReason.UNKNOWN_FACE if top.share == 0 else DecisionReason.BELOW_THRESHOLD
        return FrameVerdict(reason, candidate=top)
    if second is not None and second.share >= thresholds.verification:
        return FrameVerdict(DecisionReason.AMBIGUOUS, candidate=top)
    if top.best - thresholds.detection < margin:
        return FrameVerdict(DecisionReason.AMBIGUOUS, candidate=top)
    if second is not None and top.best - second.best < margin:
        return FrameVerdict(DecisionReason.AMBIGUOUS, candidate=top)
    return FrameVerdict(DecisionReason.GRANTED, verified=top, candidate=top)


@dataclass(frozen=True)
class BurstDecision:
    """The identity outcome of a burst (before the access policy).

    ``user`` is the verified user for a grant, else None; ``candidate`` the best candidate
    seen; ``frames`` how many frames were judged.
    """

    reason: DecisionReason
    user: UserScore | None
    candidate: UserScore | None
    score: float
    frames: int


class BurstJudge:
    """Accumulates frame verdicts of one burst and says when it is decided.

    A grant needs ``agreement`` frames verifying the same user (capped at ``max_frames``, so
    a one-frame burst such as an image trigger can grant); a frame verifying a different user
    makes the whole burst ambiguous at once. Denials wait for the burst to end.
    """

    def __init__(self, agreement: int, max_frames: int) -> None:
        self._needed = max(1, min(agreement, max_frames))
        self._max_frames = max_frames
        self._verdicts: list[FrameVerdict] = []

    @property
    def frames(self) -> int:
        """Frames judged so far."""
        return len(self._verdicts)

    @property
    def exhausted(self) -> bool:
        """True when the burst has used all its frames."""
        return len(self._verdicts) >= self._max_frames

    def add(self, verdict: FrameVerdict) -> BurstDecision | None:
        """Record a frame; return the decision once it is confident, else None."""
        self._verdicts.append(verdict)
        verified = [v.verified for v in self._verdicts if v.verified is not None]
        if len({u.user_id for u in verified}) > 1:
            return self._decide(DecisionReason.AMBIGUOUS, None)
        if len(verified) >= self._needed:
            strongest = max(verified, key=lambda u: u.best)
            return self._decide(DecisionReason.GRANTED, strongest)
        if self.exhausted:
            return self.finish()
        return None

    def finish(self) -> BurstDecision:
        """Close the burst (out of frames or time) with the most telling denial."""
        reasons = {v.reason for v in self._verdicts}
        for reason in _DENY_PRIORITY:
            if reason in reasons:
                return self._decide(reason, None)
        if DecisionReason.GRANTED in reasons:
            # Some frames verified the user but not enough of them agreed: doubt, so deny.
            return self._decide(DecisionReason.BELOW_THRESHOLD, None)
        return self._decide(DecisionReason.NO_FACE, None)

    def _decide(self, reason: DecisionReason, user: UserScore | None) -> BurstDecision:
        candidates = [v.candidate for v in self._verdicts if v.candidate is not None]
        candidate = user or (max(candidates, key=lambda c: c.best) if candidates else None)
        return BurstDecision(
            reason=reason,
            user=user,
            candidate=candidate,
            score=candidate.best if candidate else 0.0,
            frames=len(self._verdicts),
        )
