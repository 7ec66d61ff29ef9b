"""In-process parts of bench_decision.py: per-stage timings of a decision and gallery scale.

The stages call the functions the daemon calls, in the order it calls them, on the same
camera-like frames the daemon reads in the trigger runs (``FacegateDaemon`` -> ``DoorController``
-> ``Verifier.judge`` -> ``FacePipeline.process`` -> ``match_probe`` / ``judge_frame`` ->
``check_user`` -> ``Registry.log_access`` -> the outbox's MQTT publish).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from decision_site import DOOR, Broker, Subscriber

from facegate.config import FacegateConfig

SCALES = (10, 1_000, 10_000, 100_000)
IMAGES_PER_SYNTHETIC_USER = 5


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, linear interpolation."""
    return float(np.percentile(np.asarray(values, np.float64), q))


def summary_ms(values: list[float]) -> dict[str, float]:
    """Count, median and p95 of millisecond samples, rounded."""
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 3),
        "p95_ms": round(pct(values, 95), 3),
    }


class Stopwatch:
    """Per-stage millisecond samples: ``with watch("detect"): ...``."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self._stage = ""

    def __call__(self, stage: str) -> Stopwatch:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        ms = (time.perf_counter() - self._t0) * 1e3
        self.samples.setdefault(self._stage, []).append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """Median and p95 per stage, in stage order."""
        return {stage: summary_ms(values) for stage, values in self.samples.items()}


def serving_tools(config: FacegateConfig) -> Any:
    """The daemon's verifier for ``config`` (model, pipeline, thresholds, enrolled gallery)."""
    from facegate.daemon.app import build_verifier
    from facegate.storage.registry import open_registry

    registry = open_registry(config.storage)
    return registry, build_verifier(registry, config)


def bench_stages(
    config: FacegateConfig, frames: list[Path], broker: Broker, rounds: int
) -> dict[str, Any]:
    """Median/p95 of every stage of a one-frame decision over the frame folder's frames."""
    from facegate.daemon.decision import judge_frame
    from facegate.daemon.matching import match_probe
    from facegate.daemon.motion import MotionDetector
    from facegate.daemon.policy import GrantCooldown, check_user
    from facegate.daemon.sources import FolderSource
    from facegate.face import quality
    from facegate.face.types import Detection
    from facegate.storage.records import OutboxMessage

    registry, verifier = serving_tools(config)
    pipeline, model = verifier.pipeline, verifier.model
    source = FolderSource(frames[0].parent, loop=True, fps=1000.0)
    source.open()
    motion = MotionDetector(config.motion)
    cooldown = GrantCooldown(0.0)
    sub = Subscriber(broker, [f"facegate/{DOOR}/access"])
    publisher = Subscriber(broker, ["facegate/bench/unused"])
    watch = Stopwatch()
    outcomes: dict[str, int] = {}
    try:
        for i in range(rounds * len(frames) + 3):
            warm = i < 3
            watch = Stopwatch() if warm else watch
            with watch("capture"):
                frame = source.read()
                while frame is None:  # pacing at 1000 fps: at most a millisecond
                    frame = source.read()
            with watch("motion"):
                motion.update(frame.image, frame.timestamp)
            rgb = frame.image
            with watch("detect"):  # FacePipeline.process: detect, select, refine the chosen face
                found = pipeline.detector.detect(rgb, tiled=pipeline.config.tiled_detection)
                chosen = (
                    pipeline.select(found, rgb.shape[0], rgb.shape[1], "config") if found else None
                )
                if isinstance(chosen, Detection) and pipeline.refine:
                    chosen = pipeline.detector.refine(rgb, chosen)
            if not isinstance(chosen, Detection):
                outcomes["no_face"] = outcomes.get("no_face", 0) + 1
                continue
            with watch("align"):  # landmark check, align + quality measures, quality gate
                ok = quality.landmarks_plausible(chosen)
                face = pipeline.align(rgb, chosen) if ok else None
                rejected = quality.check(chosen, face.quality, pipeline.config) if face else True
            if rejected:
                outcomes["poor_quality"] = outcomes.get("poor_quality", 0) + 1
                continue
            with watch("embed"):
                probe = model.embed(face.crop[None])[0]
            with watch("match"):
                match = match_probe(probe, verifier.index, model.head, verifier.thresholds)
                verdict = judge_frame(match, verifier.thresholds, verifier.margin)
            with watch("policy"):
                user = verifier.user(verdict.verified.user_id) if verdict.verified else None
                reason = verdict.reason
                if user is not None:
                    reason = check_user(user, datetime.now().astimezone()) or reason
                    cooldown.should_open(user.id, time.monotonic())
            outcomes[str(reason)] = outcomes.get(str(reason), 0) + 1
            payload = json.dumps(
                {"door": DOOR, "reason": str(reason), "user": user.name if user else None}
            ).encode()
            with watch("record"):  # the access log row and its outbox rows, one commit
                registry.log_access(
                    door=DOOR,
                    trigger="mqtt",
                    decision="granted" if user else "denied",
                    reason=str(reason),
                    decision_id=uuid.uuid4().hex,
                    time=datetime.now(UTC),
                    user_id=user.id if user else None,
                    score=verdict.score,
                    frames=1,
                    events=[OutboxMessage(f"facegate/{DOOR}/access", payload, 1, False)],
                )
            sub.drain()
            with watch("publish"):  # MQTT QoS 1 through the broker to a subscriber
                publisher.client.publish(f"facegate/{DOOR}/access", payload, qos=1)
                sub.wait_for(f"facegate/{DOOR}/access", timeout=10)
    finally:
        sub.close()
        publisher.close()
        registry.close()
    return {
        "runtime": config.model.runtime,
        "frames": len(frames),
        "stages": watch.summary(),
        "outcomes": outcomes,
    }


def synthetic_rows(rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` random unit vectors (float32)."""
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def padded_gallery(real: Any, rows: int, rng: np.random.Generator) -> Any:
    """The enrolled gallery cut or padded with synthetic users (5 rows each) to ``rows``."""
    from facegate.storage.records import GalleryMatrix, User

    keep = min(rows, len(real.user_ids))
    extra = rows - keep
    base = int(real.user_ids.max()) + 1 if len(real.user_ids) else 1
    owners = base + np.arange(extra, dtype=np.int64) // IMAGES_PER_SYNTHETIC_USER
    now = datetime.now(UTC)
    users = dict(real.users)
    for u in np.unique(owners):
        users[int(u)] = User(int(u), f"u{u}", f"User {u}", True, None, None, None, True, now, now)
    return GalleryMatrix(
        real.model_sha256,
        np.concatenate([real.vectors[:keep], synthetic_rows(extra, real.vectors.shape[1], rng)]),
        np.concatenate([real.user_ids[:keep], owners]),
        np.concatenate([real.image_ids[:keep], -1 - np.arange(extra, dtype=np.int64)]),
        users,
    )


def bench_scale(config: FacegateConfig, frames: list[Path], repeats: int) -> dict[str, Any]:
    """``Verifier.judge`` (detect, align, embed, match, verdict) on the same frames with
    galleries of 10 to 100,000 rows (the enrolled people plus synthetic users), the sizes
    interleaved frame by frame so that load on the machine hits them alike; the match step
    alone; the gallery matrix's memory; and how many grants each size gave."""
    from facegate.daemon.verifier import Verifier
    from facegate.face.image_io import load_image

    registry, served = serving_tools(config)
    real = registry.gallery_matrix(served.model.space)
    registry.close()
    images = [load_image(p) for p in frames]
    rng = np.random.default_rng(8)
    verifiers: dict[int, Verifier] = {}
    load_ms: dict[int, float] = {}
    for rows in SCALES:
        verifier = Verifier(served.pipeline, served.model, served.thresholds, served.margin)
        gallery = padded_gallery(real, rows, rng)
        t0 = time.perf_counter()
        verifier.load_gallery(gallery)
        load_ms[rows] = (time.perf_counter() - t0) * 1e3
        verifiers[rows] = verifier
        for rgb in images[:3]:
            verifier.judge(rgb)
    whole: dict[int, list[float]] = {rows: [] for rows in SCALES}
    match: dict[int, list[float]] = {rows: [] for rows in SCALES}
    grants = dict.fromkeys(SCALES, 0)
    for _ in range(repeats):
        for rgb in images:
            for rows, verifier in verifiers.items():
                t = time.perf_counter()
                judged = verifier.judge(rgb)
                whole[rows].append((time.perf_counter() - t) * 1e3)
                if judged.times.match_ms:
                    match[rows].append(judged.times.match_ms)
                grants[rows] += judged.verdict.verified is not None
    sizes = {
        str(rows): {
            "decision": summary_ms(whole[rows]),
            "match": summary_ms(match[rows]),
            "grants": grants[rows],
            "index_load_ms": round(load_ms[rows], 1),
            "matrix_mib": round(verifiers[rows].index.embeddings.nbytes / 2**20, 2),
        }
        for rows in SCALES
    }
    small, large = sizes[str(SCALES[0])], sizes[str(SCALES[-1])]
    return {
        "runtime": config.model.runtime,
        "sizes": sizes,
        "decision_ratio": round(large["decision"]["median_ms"] / small["decision"]["median_ms"], 3),
        "match_delta_ms": round(large["match"]["median_ms"] - small["match"]["median_ms"], 3),
    }
