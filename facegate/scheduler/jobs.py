"""The job bodies and how a run is recorded: each job is a plain function of a JobContext.

``run_job(name, context)`` records the run with ``Registry.start_job``/``finish_job`` (so
``facegate jobs list`` shows it and the last-run state survives a restart), refuses to start a
job whose previous run is still going (another process, e.g. ``facegate jobs run``: it holds
the job's OS lock), records a run whose process died as failed (interrupted), and turns
any failure into a ``failed`` record, a log line and a health event; jobs compute first and
write last, so a failure leaves galleries and models as they were.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facegate.config import FacegateConfig
from facegate.errors import ModelError, StorageError
from facegate.storage.records import JobRun
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)

GALLERY_REFRESH = "gallery_refresh"
RETRAIN = "retrain"
CALIBRATION = "calibration"
RETENTION = "retention"
JOB_NAMES: tuple[str, ...] = (GALLERY_REFRESH, RETRAIN, CALIBRATION, RETENTION)
# A "running" record older than this (plus the retrain limit) is a run that died with its
# process, not one still going.
STALE_RUN = timedelta(hours=1)
MESSAGE_CHARS = 2000

HealthCallback = Callable[[str, str], None]


def _nothing() -> None:
    """No-op reload (outside the daemon nothing holds a gallery in memory)."""


def _no_health(kind: str, message: str) -> None:
    """Health events are only logged outside the daemon."""
    logger.info("health %s: %s", kind, message)


@dataclass
class JobContext:
    """What the jobs need from their host (the daemon, or the CLI).

    ``model`` returns the model verification runs with now; ``reload`` is called after a job
    changed galleries or the active model (the daemon reloads its verifier: the active model
    if it changed, then its gallery); ``health(kind, message)`` publishes a health event;
    ``pipeline`` builds a face pipeline for the gallery self-update (None: built from the
    config); ``writes`` serialises the jobs that write galleries or switch models; setting
    ``stopping`` (the daemon's stop event) stops a running retrain's training process.
    """

    registry: Registry
    config: FacegateConfig
    model: Callable[[], LoadedModel]
    reload: Callable[[], None] = _nothing
    health: HealthCallback = _no_health
    pipeline: Callable[[], Any] | None = None
    writes: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class JobOutcome:
    """How a job body ended: ``ok`` or ``skipped``, and a one-line message."""

    outcome: str
    message: str


def active_model(context: JobContext) -> LoadedModel:
    """The model verification uses, after making sure it is the registry's active one."""
    model = context.model()
    active = context.registry.active_model()
    if active is not None and active.sha256 != model.manifest.sha256:
        context.reload()  # the active model was switched elsewhere (CLI): follow it first
        model = context.model()
        if active.sha256 != model.manifest.sha256:
            raise ModelError(
                f"verification runs model {model.manifest.sha256[:12]} but the registry's "
                f"active model is {active.sha256[:12]}"
            )
    return model


def _pipeline_factory(context: JobContext, model: LoadedModel) -> Callable[[], Any]:
    if context.pipeline is not None:
        return context.pipeline

    def build() -> Any:
        from facegate.face.pipeline import FacePipeline

        return FacePipeline(context.config.face, model.manifest.align_spec)

    return build


def gallery_refresh_job(context: JobContext) -> JobOutcome:
    """Re-embed, deduplicate, gate and cap the galleries (see ``scheduler.gallery``)."""
    from facegate.scheduler.gallery import refresh_galleries

    with context.writes:
        model = active_model(context)
        report = refresh_galleries(
            context.registry, model, context.config, _pipeline_factory(context, model)
        )
    context.reload()
    for warning in report.warnings:
        context.health("gallery_quality", warning)
    return JobOutcome("ok", report.summary())


def retrain_job(context: JobContext) -> JobOutcome:
    """Fine-tune on the site, evaluate, promote or reject (see ``scheduler.retrain``)."""
    from facegate.scheduler.retrain import retrain

    model = active_model(context)

    def poll() -> None:
        if context.stopping.is_set():
            raise ModelError("retrain stopped: the service is shutting down")

    result = retrain(context.registry, context.config, model, poll=poll, lock=context.writes)
    if result.version is None:
        return JobOutcome("skipped", result.message)
    if result.version.active:
        context.reload()
    return JobOutcome("ok", result.message)


def calibration_job(context: JobContext) -> JobOutcome:
    """FAR/FRR on the site's gallery pairs; a health event per pair of close users."""
    from facegate.scheduler.calibrate import calibrate

    report = calibrate(context.registry, active_model(context), context.config)
    for pair in report.close_users:
        context.health(
            "gallery_overlap",
            f"galleries of {pair.user_a!r} and {pair.user_b!r} are too close to separate "
            f"(mean score {pair.mean_score:.3f}, {pair.confusable_images} images confusable)",
        )
    return JobOutcome("ok", report.summary())


def retention_job(context: JobContext) -> JobOutcome:
    """Delete old captures and access-log rows."""
    from facegate.scheduler.retention import apply_retention

    return JobOutcome("ok", apply_retention(context.registry, context.config).summary())


JOBS: dict[str, Callable[[JobContext], JobOutcome]] = {
    GALLERY_REFRESH: gallery_refresh_job,
    RETRAIN: retrain_job,
    CALIBRATION: calibration_job,
    RETENTION: retention_job,
}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:MESSAGE_CHARS]


def _still_running(registry: Registry, name: str, config: FacegateConfig) -> JobRun | None:
    """The previous run of ``name`` when it is recorded as running and not stale."""
    runs = registry.job_runs(name, limit=1)
    if not runs or runs[0].outcome != "running":
        return None
    stale = STALE_RUN + timedelta(seconds=config.scheduler.retrain_time_limit_s)
    started = runs[0].started_at
    if started.tzinfo is None:  # SQLite hands back naive UTC
        started = started.replace(tzinfo=UTC)
    return runs[0] if datetime.now(UTC) - started < stale else None


@contextmanager
def job_lock(data_dir: Path, name: str) -> Iterator[bool]:
    """Hold the OS lock of job ``name`` (a file under ``data_dir/locks``) while the block runs;
    yields False when another process or thread holds it. The kernel releases it when its
    process dies, so a run recorded as running whose lock is free died with its process."""
    folder = Path(data_dir) / "locks"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # also releases the lock


def run_job(name: str, context: JobContext) -> JobRun:
    """Run one job now and record it; never raises for a failing job (see module doc)."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}; jobs: {', '.join(JOB_NAMES)}")
    with job_lock(context.registry.data_dir, name) as mine:
        return _run_locked(name, context, mine)


def _run_locked(name: str, context: JobContext, mine: bool) -> JobRun:
    registry = context.registry
    busy = _still_running(registry, name, context.config)
    if not mine:
        run = registry.start_job(name)
        message = "another process is running it"
        if busy is not None:
            message = f"run {busy.id} started {busy.started_at:%Y-%m-%d %H:%M:%S} is still going"
        logger.info("job %s skipped: %s", name, message)
        return registry.finish_job(run.id, "skipped", message)
    if busy is not None:
        # Recorded as running, yet nobody holds its lock: its process died (killed, power cut).
        logger.warning("job %s run %d was interrupted; running it again", name, busy.id)
        registry.finish_job(busy.id, "failed", "interrupted: its process ended before finishing")
    run = registry.start_job(name)
    logger.info("job %s started (run %d)", name, run.id)
    try:
        outcome = JOBS[name](context)
    except Exception as err:  # a failing job must never take the daemon down
        logger.exception("job %s failed: %s", name, _one_line(err))
        finished = registry.finish_job(run.id, "failed", _one_line(err))
        try:
            context.health("job_failed", f"{name}: {_one_line(err)}")
        except Exception as health_err:  # the health channel itself may be down
            logger.warning("could not publish the failure of %s: %s", name, health_err)
        return finished
    logger.info("job %s %s: %s", name, outcome.outcome, outcome.message)
    return registry.finish_job(run.id, outcome.outcome, outcome.message[:MESSAGE_CHARS])


def follow_active_model(context: JobContext) -> bool:
    """Reload when the registry's active model is not the one verification uses (it was
    activated or rolled back from the CLI); True when a reload was asked for."""
    active = context.registry.active_model()
    if active is None or active.sha256 == context.model().manifest.sha256:
        return False
    logger.info("active model changed to %s: reloading", active.sha256[:12])
    try:
        context.reload()
    except (ModelError, StorageError) as err:
        # A model whose file fails its hash (truncated, altered) is refused; the model in use
        # keeps serving, and the next check tries again (an operator must act).
        logger.error("not switching to model %s: %s", active.sha256[:12], err)
        context.health("model_refused", str(err))
        return False
    return True
