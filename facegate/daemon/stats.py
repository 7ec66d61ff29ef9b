"""Counters and latency percentiles for the heartbeat (thread-safe, in memory)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np

# Every kind of rejected input counted under "bad_input" in the heartbeat: a trigger that is
# neither a word nor a JSON object with a string source; an image that does not decode; one
# declaring more pixels than face.max_image_side allows (decompression bomb, refused unread);
# a lock command other than LOCK/UNLOCK; a Home Assistant status other than online/offline; a
# message above mqtt.max_payload_bytes on any subscribed topic (dropped unread); a message on a
# topic the door does not act on.
BAD_INPUT_KINDS = (
    "malformed_trigger",
    "bad_image",
    "image_too_large",
    "bad_lock_command",
    "bad_ha_status",
    "oversize_payload",
    "unexpected_topic",
)


class DaemonStats:
    """What the daemon has seen since start: frames, triggers, decisions, bad input, latency."""

    def __init__(self, latency_window: int = 512) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._counts: Counter[str] = Counter()
        self._decisions: Counter[str] = Counter()
        self._bad_input: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=latency_window)

    def count(self, name: str, n: int = 1) -> None:
        """Add to a named counter (frames, motion, triggers_mqtt, bursts, ...)."""
        with self._lock:
            self._counts[name] += n

    def bad_input(self, kind: str) -> None:
        """Count one rejected input; ``kind`` is one of BAD_INPUT_KINDS."""
        with self._lock:
            self._bad_input[kind] += 1

    def decision(self, reason: str, latency_ms: float) -> None:
        """Count a decision by reason and record its trigger-to-decision latency."""
        with self._lock:
            self._decisions[reason] += 1
            self._latencies.append(latency_ms)

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """A JSON-ready copy of every counter plus latency p50/p95/max over the recent window."""
        with self._lock:
            lat = np.array(self._latencies, dtype=np.float64)
            out: dict[str, Any] = {
                "uptime_s": round(time.monotonic() - self._started, 1),
                "counts": dict(self._counts),
                "decisions": dict(self._decisions),
                "bad_input": dict(self._bad_input),
                "latency_ms": {
                    "p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
                    "p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
                    "max": round(float(lat.max()), 1) if lat.size else None,
                    "n": int(lat.size),
                },
            }
        out.update(extra)
        return out
