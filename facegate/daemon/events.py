"""The JSON the door publishes: access decisions and heartbeats (pure builders)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from facegate.daemon.decision import DecisionReason
from facegate.model.manifest import Thresholds


@dataclass(frozen=True)
class Trigger:
    """What started a burst: ``kind`` is motion, mqtt, image, home_assistant or cli."""

    kind: str
    source: str = ""
    # For image triggers: the first hex digits of the image's sha256, naming it in the event.
    image: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain form for JSON, leaving out empty fields."""
        out = {"kind": self.kind}
        if self.source:
            out["source"] = self.source
        if self.image:
            out["image"] = self.image
        return out


@dataclass(frozen=True)
class AccessEvent:
    """One decision as published and logged.

    ``user`` is the verified user's name (also when the policy then denies them), None when
    nobody was verified; ``candidate`` the best-scoring user, kept out of MQTT (access log only).
    ``score`` is the candidate's best comparison score in [0, 1]; ``timings`` milliseconds
    per stage of the burst's frames (face, embed, match), empty when nothing was judged.
    """

    decision_id: str
    timestamp: datetime
    door: str
    reason: DecisionReason
    user: str | None
    candidate: str | None
    score: float
    thresholds: Thresholds
    trigger: Trigger
    frames: int
    latency_ms: float
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        """``granted``, ``locked_out`` or ``denied`` (the HA event entity's types)."""
        if self.reason in (DecisionReason.GRANTED, DecisionReason.REMOTE_UNLOCK):
            return "granted"
        if self.reason is DecisionReason.LOCKED_OUT:
            return "locked_out"
        return "denied"

    @property
    def granted(self) -> bool:
        """True when the door should open."""
        return self.event_type == "granted"

    def to_dict(self) -> dict[str, Any]:
        """The published JSON object."""
        return {
            "event_type": self.event_type,
            "decision_id": self.decision_id,
            "timestamp": self.timestamp.isoformat(),
            "door": self.door,
            "user": self.user,
            "reason": str(self.reason),
            "score": round(self.score, 4),
            "thresholds": {
                "detection": self.thresholds.detection,
                "verification": self.thresholds.verification,
            },
            "trigger": self.trigger.to_dict(),
            "frames": self.frames,
            "latency_ms": round(self.latency_ms, 1),
            "timings_ms": dict(self.timings),
        }

    def to_json(self) -> bytes:
        """UTF-8 JSON bytes for MQTT."""
        return json.dumps(self.to_dict(), sort_keys=True).encode()
