"""The APScheduler built from the config (facegate.scheduler.schedule): triggers, job options,
catch-up after a restart, and a real scheduler running jobs that never overlap."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from facegate.config import FacegateConfig, parse_config
from facegate.errors import ConfigError
from facegate.scheduler.jobs import JobContext
from facegate.scheduler.schedule import build_scheduler, first_run, make_trigger
from facegate.storage.registry import Registry, open_registry

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_make_trigger() -> None:
    assert make_trigger("off", UTC) is None
    interval = make_trigger("6h", UTC)
    assert isinstance(interval, IntervalTrigger)
    assert interval.interval == timedelta(hours=6)
    assert isinstance(make_trigger("15 3 * * *", UTC), CronTrigger)
    with pytest.raises(ConfigError, match="bad schedule"):
        make_trigger("15 3 * * mondays", UTC)


def test_config_refuses_bad_schedules() -> None:
    with pytest.raises(ConfigError, match="scheduler"):
        parse_config({"scheduler": {"retention": "every hour"}})
    with pytest.raises(ConfigError, match="bad cron line"):
        parse_config({"scheduler": {"calibration": "61 3 * * *"}})


@pytest.mark.parametrize(
    ("text", "last", "expected"),
    [
        ("1h", None, None),  # never ran: the trigger decides
        ("1h", NOW - timedelta(minutes=10), NOW + timedelta(minutes=50)),  # on its schedule
        ("1h", NOW - timedelta(hours=5), NOW + timedelta(seconds=60)),  # overdue: soon, once
        ("0 3 * * *", NOW - timedelta(hours=2), None),  # ran today at 10:00: next at 03:00
        ("0 3 * * *", NOW - timedelta(days=2), NOW + timedelta(seconds=60)),  # missed one
    ],
)
def test_first_run_after_restart(text: str, last, expected) -> None:
    trigger = make_trigger(text, UTC)
    assert first_run(text, trigger, last, NOW, 60.0) == expected


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """An empty registry."""
    reg = open_registry(parse_config({"storage": {"data_dir": str(tmp_path)}}).storage)
    try:
        yield reg
    finally:
        reg.close()


def _config(tmp_path: Path, **scheduler) -> FacegateConfig:
    return parse_config(
        {
            "storage": {"data_dir": str(tmp_path)},
            "decision": {"timezone": "UTC"},
            "scheduler": scheduler,
        }
    )


class SlowModel:
    """A model callable for the context that takes longer than the job interval, then fails
    (the calibration job asks for the model first)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.seconds)
            raise RuntimeError("no model in this test")
        finally:
            with self._lock:
                self.active -= 1


def test_job_options_and_disabled_jobs(registry: Registry, tmp_path: Path) -> None:
    config = _config(tmp_path)
    scheduler = build_scheduler(config, JobContext(registry, config, model=SlowModel(0)))
    ids = {job.id for job in scheduler.get_jobs()}
    assert ids == {"gallery_refresh", "calibration", "retention", "model_watch"}  # retrain off
    for job in scheduler.get_jobs():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time == 3600
    off = _config(tmp_path, enabled=False)
    assert build_scheduler(off, JobContext(registry, off, model=SlowModel(0))).get_jobs() == []


def test_real_scheduler_records_runs_that_never_overlap(registry: Registry, tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        gallery_refresh="off",
        calibration="0.2s",
        retention="0.3s",
        model_watch_s=3600,
    )
    model = SlowModel(0.5)
    events: list[tuple[str, str]] = []
    context = JobContext(
        registry, config, model=model, health=lambda kind, msg: events.append((kind, msg))
    )
    scheduler = build_scheduler(config, context)
    scheduler.start()
    try:
        time.sleep(2.2)
    finally:
        scheduler.shutdown(wait=True)

    calibrations = sorted(registry.job_runs("calibration"), key=lambda r: r.id)
    retentions = registry.job_runs("retention")
    assert len(retentions) >= 3 and {r.outcome for r in retentions} == {"ok"}
    # Scheduled every 0.2 s but each run takes 0.5 s: runs are skipped, never stacked.
    assert 2 <= len(calibrations) <= 5
    assert model.most_active == 1
    for earlier, later in itertools.pairwise(calibrations):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at
    assert {r.outcome for r in calibrations} == {"failed"}
    assert calibrations[0].message == "no model in this test"
    assert [kind for kind, _ in events] == ["job_failed"] * len(calibrations)


def test_last_runs_survive_a_restart(registry: Registry, tmp_path: Path) -> None:
    config = _config(tmp_path, retention="1h", model_watch_s=3600)
    run = registry.start_job("retention")
    registry.finish_job(run.id, "ok")
    scheduler = build_scheduler(config, JobContext(registry, config, model=SlowModel(0)))
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("retention")
        started = run.started_at.replace(tzinfo=UTC)
        assert job.next_run_time == pytest.approx(
            started + timedelta(hours=1), abs=timedelta(seconds=1)
        )
        # Gallery refresh never ran: it waits for its cron time rather than running now.
        refresh = scheduler.get_job("gallery_refresh").next_run_time
        assert (refresh.hour, refresh.minute) == (3, 15)
    finally:
        scheduler.shutdown(wait=False)
