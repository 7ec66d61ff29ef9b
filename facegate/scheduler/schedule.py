"""The daemon's one APScheduler: jobs from the config, last runs from the registry.

Every job has a stable id (its name), ``coalesce=True`` (missed runs collapse into one),
``max_instances=1`` (a job never overlaps itself) and a misfire grace time. Schedules come
from ``config.scheduler``; after a restart a job whose last recorded run (registry) is older
than its schedule allows runs once, shortly after start. ``build_scheduler`` starts nothing:
the daemon calls ``start()`` and ``shutdown()``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from facegate.config import FacegateConfig, SchedulerConfig, interval_seconds
from facegate.errors import ConfigError
from facegate.scheduler.jobs import JOB_NAMES, JobContext, follow_active_model, run_job

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.base import BaseTrigger

logger = logging.getLogger(__name__)

MODEL_WATCH_ID = "model_watch"
# A job overdue at start-up waits this long, so the daemon is serving before it runs.
CATCH_UP_DELAY_S = 60.0


def _timezone(config: FacegateConfig) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not config.decision.timezone:
        from tzlocal import get_localzone

        return get_localzone()
    try:
        return ZoneInfo(config.decision.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"decision.timezone: unknown time zone {config.decision.timezone!r}"
        ) from err


def job_schedule(config: SchedulerConfig, name: str) -> str:
    """The schedule text of a job ("off", an interval or a cron line)."""
    return str(getattr(config, name)).strip()


def make_trigger(text: str, timezone: Any) -> BaseTrigger | None:
    """The trigger of a schedule text; None for "off"."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    text = text.strip()
    if text == "off":
        return None
    seconds = interval_seconds(text)
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, timezone=timezone)
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as err:
        raise ConfigError(f"scheduler: bad schedule {text!r}: {err}") from err


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def first_run(
    text: str, trigger: BaseTrigger, last_start: datetime | None, now: datetime, delay_s: float
) -> datetime | None:
    """When a job runs first after start-up: soon when its last run is overdue, else on its
    schedule (None lets the trigger decide)."""
    if last_start is None:
        return None
    last_start = _aware(last_start)
    seconds = interval_seconds(text)
    if seconds is not None:
        due = last_start + timedelta(seconds=seconds)
        return max(due, now + timedelta(seconds=delay_s))
    due = trigger.get_next_fire_time(None, last_start)
    if due is not None and due <= now:
        return now + timedelta(seconds=delay_s)
    return None


def job_options(config: SchedulerConfig) -> dict[str, Any]:
    """The options every job gets: no overlap, missed runs coalesced, a misfire grace time."""
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": int(config.misfire_grace_s)}


def build_scheduler(
    config: FacegateConfig, context: JobContext, catch_up_delay_s: float = CATCH_UP_DELAY_S
) -> BackgroundScheduler:
    """A BackgroundScheduler (not started) with every scheduled job and the model watch."""
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = config.scheduler
    timezone = _timezone(config)
    options = job_options(sched)
    scheduler = BackgroundScheduler(timezone=timezone, job_defaults=options)
    if not sched.enabled:
        logger.info("scheduler disabled: no maintenance jobs")
        return scheduler
    last = context.registry.last_job_runs()
    now = datetime.now(UTC)
    for name in JOB_NAMES:
        text = job_schedule(sched, name)
        trigger = make_trigger(text, timezone)
        if trigger is None:
            logger.info("job %s is off", name)
            continue
        run = last.get(name)
        start = first_run(text, trigger, run.started_at if run else None, now, catch_up_delay_s)
        when: dict[str, Any] = {"next_run_time": start} if start is not None else {}
        scheduler.add_job(
            run_job,
            trigger,
            args=(name, context),
            id=name,
            name=name,
            replace_existing=True,
            **options,
            **when,
        )
        logger.info("job %s scheduled: %s", name, text)
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler.add_job(
        follow_active_model,
        IntervalTrigger(seconds=sched.model_watch_s, timezone=timezone),
        args=(context,),
        id=MODEL_WATCH_ID,
        name=MODEL_WATCH_ID,
        replace_existing=True,
        **options,
    )
    return scheduler


def check_model_now(scheduler: Any) -> None:
    """Run the active-model check at once (the CLI said the registry changed), on the
    scheduler's thread: a model switch loads a model, which the caller must not wait for."""
    from apscheduler.jobstores.base import JobLookupError

    try:
        scheduler.modify_job(MODEL_WATCH_ID, next_run_time=datetime.now(UTC))
    except JobLookupError:
        logger.debug("no model watch job to run")


def next_runs(config: FacegateConfig, last: dict[str, Any]) -> dict[str, datetime | None]:
    """When each job would next run under this config, given the last runs (for the CLI)."""
    timezone = _timezone(config)
    now = datetime.now(UTC)
    out: dict[str, datetime | None] = {}
    for name in JOB_NAMES:
        text = job_schedule(config.scheduler, name)
        trigger = make_trigger(text, timezone) if config.scheduler.enabled else None
        if trigger is None:
            out[name] = None
            continue
        run = last.get(name)
        start = first_run(text, trigger, run.started_at if run else None, now, 0.0)
        out[name] = start or trigger.get_next_fire_time(None, now)
    return out
