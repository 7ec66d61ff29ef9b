"""``facegate jobs list|run``: the maintenance jobs, their schedules and last runs.

``jobs run NAME`` runs a job now in this process, recorded like a scheduled run; a running
daemon picks up a model it promoted within ``scheduler.model_watch_s`` seconds and gallery
changes at its next gallery refresh.
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from facegate.cli.tables import opened_registry, print_json, print_table
from facegate.config import FacegateConfig

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel
    from facegate.storage.registry import Registry

logger = logging.getLogger(__name__)

# Kept here (not imported from facegate.scheduler.jobs) so ``--help`` imports nothing more.
JOB_CHOICES = ("gallery_refresh", "retrain", "calibration", "retention")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``jobs list`` and ``jobs run NAME``."""
    jobs = subparsers.add_parser("jobs", help="maintenance jobs: list, run now")
    commands = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="each job's schedule, last run and outcome")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=run_list)
    run = commands.add_parser("run", help="run a job now")
    run.add_argument("name", choices=JOB_CHOICES, metavar="NAME", help=", ".join(JOB_CHOICES))
    run.set_defaults(handler=run_now)


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def job_rows(registry: Registry, config: FacegateConfig) -> list[dict[str, Any]]:
    """One JSON-ready dict per job: schedule, next run, last run and its outcome."""
    from facegate.scheduler.jobs import JOB_NAMES
    from facegate.scheduler.schedule import job_schedule, next_runs

    last = registry.last_job_runs()
    upcoming = next_runs(config, last)
    rows = []
    for name in JOB_NAMES:
        run = last.get(name)
        rows.append(
            {
                "job": name,
                "schedule": job_schedule(config.scheduler, name)
                if config.scheduler.enabled
                else "off (scheduler disabled)",
                "next_run": _time(upcoming.get(name)),
                "last_started": _time(run.started_at) if run else None,
                "last_finished": _time(run.finished_at) if run else None,
                "outcome": run.outcome if run else None,
                "message": run.message if run else None,
            }
        )
    return rows


def run_list(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print each job with its schedule and last run."""
    with opened_registry(config) as registry:
        rows = job_rows(registry, config)
    if args.json:
        print_json(rows)
        return 0
    table = [
        (r["job"], r["schedule"], r["outcome"] or "never run", r["last_started"]) for r in rows
    ]
    notes = [
        [text for text in (r["message"], r["next_run"] and f"next: {r['next_run']}") if text]
        for r in rows
    ]
    print_table(("JOB", "SCHEDULE", "LAST", "STARTED"), table, "no jobs", notes=notes)
    return 0


def cli_model_loader(registry: Registry, config: FacegateConfig) -> Any:
    """A loader of the registry's active model (hash verified), loaded once on first use."""
    loaded: list[LoadedModel] = []

    def model() -> LoadedModel:
        if not loaded:
            from facegate.enrollment.enroll import register_model
            from facegate.model.bundle import load_model_dir
            from facegate.scheduler.promote import load_version

            active = registry.active_model()
            if active is not None:
                loaded.append(load_version(active, config.model.runtime, config.model.variant))
            else:
                loaded.append(
                    load_model_dir(config.model.path, config.model.runtime, config.model.variant)
                )
                register_model(registry, loaded[0])
        return loaded[0]

    return model


def run_now(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Run one job now; exit 1 when it failed."""
    from facegate.scheduler.jobs import JobContext, run_job

    with opened_registry(config) as registry:
        context = JobContext(
            registry=registry, config=config, model=cli_model_loader(registry, config)
        )
        run = run_job(args.name, context)
    print(f"{run.job}: {run.outcome}: {run.message}")
    return 1 if run.outcome == "failed" else 0
