"""SIGKILL during a gallery refresh and during a model promotion (``facegate`` subprocesses
killed at a sweep of moments through their work): afterwards the registry is sound, exactly
one model is active, its galleries are complete (or completed at the next start), and the job
runs again instead of waiting for a run that died."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daemon_site import with_sections, write_config
from reliability_support import integrity, model_variant

from facegate.config import FacegateConfig

# Kills land at 1.5, 3, 4.5, ... s after the start, until a run gets to finish its work.
KILL_STEP_S = 1.5
MAX_KILLS = 15


def _facegate(config_file: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "facegate", "--config", str(config_file), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _check_consistent(db: Path) -> str:
    """The invariants a restart relies on; returns the active model's sha256."""
    assert integrity(db) == "ok"
    active = _query(db, "SELECT sha256 FROM model_versions WHERE active")
    assert len(active) == 1, active
    models = {row[0] for row in _query(db, "SELECT sha256 FROM model_versions")}
    embedded = {row[0] for row in _query(db, "SELECT DISTINCT model_sha256 FROM embeddings")}
    assert embedded <= models, "embeddings of a model that is not registered"
    orphans = _query(
        db, "SELECT COUNT(*) FROM embeddings WHERE image_id NOT IN (SELECT id FROM gallery_images)"
    )
    assert orphans == [(0,)]
    for (path,) in _query(db, "SELECT path FROM gallery_images"):
        assert (db.parent / path).is_file(), f"gallery row without its crop: {path}"
    return active[0][0]


def _missing_for(db: Path, sha: str) -> int:
    return _query(
        db,
        "SELECT COUNT(*) FROM gallery_images WHERE id NOT IN "
        f"(SELECT image_id FROM embeddings WHERE model_sha256 = '{sha}')",
    )[0][0]


def _kill_at(config_file: Path, delay_s: float, *args: str) -> int:
    proc = _facegate(config_file, *args)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(30)


def _timed_run(config_file: Path, *args: str) -> tuple[float, int, str]:
    started = time.monotonic()
    proc = _facegate(config_file, *args)
    _, err = proc.communicate(timeout=300)
    return time.monotonic() - started, proc.returncode, err.decode()


def _sweep(config_file: Path, args: tuple[str, ...], done, check) -> list[str]:
    """Run ``facegate ARGS`` and SIGKILL it ever later until ``done()``; ``check()`` after
    each run. Returns "killed" or "finished" per run."""
    outcomes: list[str] = []
    for k in range(1, MAX_KILLS + 1):
        code = _kill_at(config_file, k * KILL_STEP_S, *args)
        outcomes.append("killed" if code == -signal.SIGKILL else "finished")
        check()
        if done() or outcomes[-1] == "finished":
            break
    return outcomes


def test_sigkill_during_gallery_refresh(site: FacegateConfig, tmp_path: Path) -> None:
    # Capping galleries at 2 makes the refresh rewrite them (4 images -> 2).
    config = with_sections(site, enrollment={"max_gallery": 2, "min_images": 1})
    config_file = write_config(config, tmp_path / "facegate.toml")
    db = config.storage.data_dir / "registry.db"

    def images() -> int:
        return _query(db, "SELECT COUNT(*) FROM gallery_images")[0][0]

    def check() -> None:
        _check_consistent(db)
        assert images() in (4, 2), f"a gallery half rewritten: {images()} images"

    outcomes = _sweep(config_file, ("jobs", "run", "gallery_refresh"), lambda: images() == 2, check)
    # The next run is not refused because of a run that died: it completes the job.
    _, code, err = _timed_run(config_file, "jobs", "run", "gallery_refresh")
    assert code == 0, err
    runs = _query(db, "SELECT outcome, message FROM job_runs WHERE job = 'gallery_refresh'")
    print(f"\ngallery refresh kills: {outcomes}; runs recorded: {[r[0] for r in runs]}")
    assert runs[-1][0] == "ok", runs
    assert "running" not in [r[0] for r in runs], "a killed run is still recorded as running"
    assert "skipped" not in [r[0] for r in runs], "a run was refused because of a dead one"
    sha = _check_consistent(db)
    assert images() == 2
    assert _missing_for(db, sha) == 0
    assert outcomes[0] == "killed"


def test_sigkill_during_model_promotion(
    site: FacegateConfig, exact_model_dir: Path, tmp_path: Path
) -> None:
    from facegate.daemon.app import build_verifier
    from facegate.model.bundle import load_model_dir
    from facegate.storage.registry import open_registry

    config_file = write_config(site, tmp_path / "facegate.toml")
    db = site.storage.data_dir / "registry.db"
    candidate = load_model_dir(model_variant(exact_model_dir, tmp_path / "v1", 0.25))
    sha = candidate.manifest.sha256
    registry = open_registry(site.storage)
    original = registry.active_model().sha256
    registry.register_model(sha, candidate.manifest.name, candidate.path, {})
    registry.close()

    def check() -> None:
        active = _check_consistent(db)
        assert active in (original, sha)  # the old model, or the new one complete
        if active == sha:
            assert _missing_for(db, sha) == 0, "activated before its galleries were embedded"
        # What a restart does: load the active model and embed whatever it lacks.
        registry = open_registry(site.storage)
        verifier = build_verifier(registry, site)
        registry.close()
        assert verifier.model.manifest.sha256 == active
        assert verifier.index.size == 4
        assert _missing_for(db, active) == 0

    def switched() -> bool:
        return _query(db, "SELECT sha256 FROM model_versions WHERE active")[0][0] == sha

    outcomes = _sweep(config_file, ("models", "activate", sha), switched, check)
    print(f"\npromotion kills: {outcomes}; switched: {switched()}")
    assert outcomes[0] == "killed" and not [o for o in outcomes[:-1] if o != "killed"]
    if not switched():  # every run was killed: one more, left alone, completes it
        _, code, err = _timed_run(config_file, "models", "activate", sha)
        assert code == 0, err
    check()
    assert switched()
