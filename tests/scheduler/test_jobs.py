"""Job runs: recorded outcomes, a failure that changes nothing, no double runs, following a
model switched from the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scheduler_support import Site

from facegate.scheduler.jobs import JobContext, follow_active_model, job_lock, run_job
from facegate.scheduler.promote import promote


def _context(site: Site, model: Any, events: list, reloads: list | None = None) -> JobContext:
    return JobContext(
        registry=site.registry,
        config=site.config,
        model=lambda: model,
        reload=lambda: (reloads if reloads is not None else []).append(1),
        health=lambda kind, message: events.append((kind, message)),
    )


def test_gallery_refresh_job_is_recorded_and_reloads(site: Site) -> None:
    events: list = []
    reloads: list = []
    run = run_job("gallery_refresh", _context(site, site.model, events, reloads))
    assert run.outcome == "ok" and run.finished_at is not None
    assert run.message.startswith("re-embedded 15 with ")
    assert reloads == [1]
    assert site.registry.last_job_runs()["gallery_refresh"].id == run.id


def test_failing_job_records_reports_and_leaves_everything(
    site: Site, models: dict[str, Any]
) -> None:
    registry = site.registry
    before_images = [i.id for i in registry.all_gallery_images()]
    before = registry.get_embeddings(site.model.manifest.sha256)
    events: list = []
    # The verifier runs another model than the registry's active one and cannot follow it.
    context = _context(site, models["reversed"], events)

    run = run_job("gallery_refresh", context)

    assert run.outcome == "failed"
    assert "active model is" in run.message
    assert events and events[0][0] == "job_failed" and "gallery_refresh" in events[0][1]
    assert [i.id for i in registry.all_gallery_images()] == before_images
    after = registry.get_embeddings(site.model.manifest.sha256)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert registry.get_embeddings(models["reversed"].manifest.sha256) == {}


def test_a_job_still_running_elsewhere_is_skipped(site: Site) -> None:
    other = site.registry.start_job("retention")  # e.g. ``facegate jobs run`` in a shell
    with job_lock(site.registry.data_dir, "retention"):  # ... which holds the job's lock
        run = run_job("retention", _context(site, site.model, []))
    assert run.outcome == "skipped"
    assert f"run {other.id}" in run.message
    site.registry.finish_job(other.id, "ok")
    assert run_job("retention", _context(site, site.model, [])).outcome == "ok"


def test_unknown_job_is_refused(site: Site) -> None:
    with pytest.raises(ValueError, match="unknown job"):
        run_job("defrag", _context(site, site.model, []))


def test_follow_active_model_reloads_after_a_cli_switch(site: Site, models: dict[str, Any]) -> None:
    reloads: list = []
    context = _context(site, site.model, [], reloads)
    assert follow_active_model(context) is False
    promote(site.registry, models["other"], "switched from the CLI")
    assert follow_active_model(context) is True
    assert reloads == [1]


def test_a_run_whose_process_died_is_recorded_failed_and_run_again(site: Site) -> None:
    dead = site.registry.start_job("retention")  # its process was killed: no lock held
    run = run_job("retention", _context(site, site.model, []))
    assert run.outcome == "ok"
    runs = {r.id: r for r in site.registry.job_runs("retention")}
    assert runs[dead.id].outcome == "failed" and "interrupted" in runs[dead.id].message
