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

from daemon_site import with_sections
from reliability_support import integrity, model_variant, write_config

from facegate.config import FacegateConfig

KILL_FRACTIONS = (0.6, 0.75, 0.85, 0.95)


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


def test_sigkill_during_gallery_refresh(site: FacegateConfig, tmp_path: Path) -> None:
    # Capping galleries at 2 makes the refresh rewrite them (4 images -> 2).
    config = with_sections(site, enrollment={"max_gallery": 2, "min_images": 1})
    config_file = write_config(config, tmp_path / "facegate.toml")
    db = config.storage.data_dir / "registry.db"
    # One full run of a no-op refresh gives the run's length on this machine.
    probe = with_sections(site, enrollment={"max_gallery": 50, "min_images": 1})
    length_s, code, err = _timed_run(
        write_config(probe, tmp_path / "probe.toml"), "jobs", "run", "gallery_refresh"
    )
    assert code == 0, err
    killed = 0
    for fraction in KILL_FRACTIONS:
        code = _kill_at(config_file, fraction * length_s, "jobs", "run", "gallery_refresh")
        killed += code == -signal.SIGKILL
        _check_consistent(db)
        images = _query(db, "SELECT COUNT(*) FROM gallery_images")[0][0]
        assert images in (4, 2), f"a gallery half rewritten: {images} images"
        if images == 2:
            break
    # The next run is not refused because of a run that died: it completes the job.
    _, code, err = _timed_run(config_file, "jobs", "run", "gallery_refresh")
    assert code == 0, err
    last = _query(db, "SELECT outcome FROM job_runs WHERE job = 'gallery_refresh' ORDER BY id")
    assert last[-1] == ("ok",), last
    assert ("running",) not in last, "a killed run is still recorded as running"
    sha = _check_consistent(db)
    assert _query(db, "SELECT COUNT(*) FROM gallery_images")[0][0] == 2
    assert _missing_for(db, sha) == 0
    assert killed >= 1


def test_sigkill_during_model_promotion(
    site: FacegateConfig, exact_model_dir: Path, tmp_path: Path
) -> None:
    from facegate.daemon.app import build_verifier
    from facegate.storage.registry import open_registry

    config_file = write_config(site, tmp_path / "facegate.toml")
    db = site.storage.data_dir / "registry.db"
    variants = [
        model_variant(exact_model_dir, tmp_path / f"v{i}", 0.1 * (i + 1))
        for i in range(len(KILL_FRACTIONS) + 1)
    ]
    registry = open_registry(site.storage)
    shas = []
    for path in variants:
        from facegate.model.bundle import load_model_dir

        manifest = load_model_dir(path).manifest
        registry.register_model(manifest.sha256, manifest.name, path, manifest.metrics)
        shas.append(manifest.sha256)
    registry.close()
    length_s, code, err = _timed_run(config_file, "models", "activate", shas[0])
    assert code == 0, err
    assert _check_consistent(db) == shas[0]
    outcomes = []
    for fraction, sha in zip(KILL_FRACTIONS, shas[1:], strict=True):
        before = _check_consistent(db)
        code = _kill_at(config_file, fraction * length_s, "models", "activate", sha)
        active = _check_consistent(db)
        assert active in (before, sha)  # the old model, or the new one complete
        if active == sha:
            assert _missing_for(db, sha) == 0, "activated before its galleries were embedded"
        outcomes.append(("killed" if code == -signal.SIGKILL else "finished", active == sha))
        # What a restart does: load the active model and embed whatever it lacks.
        registry = open_registry(site.storage)
        verifier = build_verifier(registry, site)
        registry.close()
        assert verifier.model.manifest.sha256 == active
        assert verifier.index.size == 4
        assert _missing_for(db, active) == 0
    print(f"\npromotion {length_s:.1f} s; kills: {outcomes}")
    assert any(state == ("killed", False) for state in outcomes)
