"""Threshold calibration (facegate.scheduler.calibrate): rates on constructed galleries, close
users, and the job on a real site with health events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from scheduler_support import Site

from facegate.model.manifest import Thresholds
from facegate.model.scoring import SiameseHead
from facegate.scheduler.calibrate import calibrate_matrix
from facegate.scheduler.jobs import JobContext, run_job
from facegate.scheduler.promote import promote
from facegate.storage.records import GalleryMatrix, User

# score = sigmoid(4 - 20 * L1): identical 1.0-ish, L1 0.1 -> 0.88, L1 0.5 -> 0.002.
HEAD = SiameseHead(kernel=np.full(2, -20.0, np.float32), bias=4.0)


def _user(user_id: int, name: str) -> User:
    now = datetime.now(UTC)
    return User(user_id, name, name, True, None, None, None, False, now, now)


def _matrix(rows: dict[int, list[list[float]]]) -> GalleryMatrix:
    names = {1: "ann", 2: "bob", 3: "cid"}
    vectors = [v for uid in sorted(rows) for v in rows[uid]]
    owners = [uid for uid in sorted(rows) for _ in rows[uid]]
    return GalleryMatrix(
        model_sha256="m",
        vectors=np.array(vectors, np.float32),
        user_ids=np.array(owners, np.int64),
        image_ids=np.arange(len(owners), dtype=np.int64),
        users={uid: _user(uid, names[uid]) for uid in rows},
    )


def test_rates_and_close_users() -> None:
    matrix = _matrix(
        {
            1: [[0.0, 0.0], [0.0, 0.05], [0.0, 0.5]],  # one image far from the other two
            2: [[1.0, 1.0], [1.0, 1.02]],
            3: [[1.0, 1.04], [1.02, 1.0]],  # cid sits on top of bob
        }
    )
    thresholds = Thresholds(detection=0.5, verification=0.5)
    report = calibrate_matrix(matrix, HEAD, thresholds, lookalike_score=0.5)
    assert report.genuine_pairs == 3 + 1 + 1
    assert report.frr == pytest.approx(2 / 5)  # ann's far image fails against both others
    assert report.impostor_pairs == 3 * 2 + 3 * 2 + 2 * 2
    assert report.far == pytest.approx(4 / 16)  # all four bob-cid pairs
    assert [(c.user_a, c.user_b) for c in report.close_users] == [("bob", "cid")]
    assert report.close_users[0].confusable_images == 4
    assert "too close: bob/cid" in report.summary()


def test_one_user_has_no_impostor_pairs() -> None:
    matrix = _matrix({1: [[0.0, 0.0], [0.0, 0.05]]})
    report = calibrate_matrix(matrix, HEAD, Thresholds(0.5, 0.5), lookalike_score=0.5)
    assert report.far is None and report.frr == 0.0
    assert "FAR n/a" in report.summary()


def test_calibration_job_on_a_site(site: Site, models: dict[str, Any]) -> None:
    events: list[tuple[str, str]] = []

    def context(model: Any) -> JobContext:
        return JobContext(
            registry=site.registry,
            config=site.config,
            model=lambda: model,
            health=lambda kind, message: events.append((kind, message)),
        )

    run = run_job("calibration", context(site.model))
    assert run.outcome == "ok"
    assert run.message.startswith("FAR 0.0000 over 75 impostor pairs")
    assert events == []
    # Under the lenient model every gallery looks like every other: three warnings.
    promote(site.registry, models["lenient"], "test")
    run = run_job("calibration", context(models["lenient"]))
    assert run.outcome == "ok" and "FAR 1.0000" in run.message
    assert [kind for kind, _ in events] == ["gallery_overlap"] * 3
    assert "too close to separate" in events[0][1]
