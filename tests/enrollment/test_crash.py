"""All or nothing across a crash: an enrollment killed with SIGKILL after writing its crop
files, while it waits inside its transaction, leaves no user, row or (after a sweep) file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from enroll_fixtures import PEOPLE, TEST_FACE_CONFIG, person_images
from sqlalchemy import text

from facegate.config import StorageConfig
from facegate.storage.registry import open_registry

ROOT = Path(__file__).resolve().parents[2]


def _crop_files(data_dir: Path) -> list[Path]:
    root = data_dir / "gallery"
    return [p for p in root.rglob("*.png") if p.is_file()] if root.exists() else []


@pytest.mark.slow
def test_sigkill_mid_enrollment_leaves_no_partial_user(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, lfw_images: Path
) -> None:
    data_dir = tmp_path / "data"
    config_file = tmp_path / "facegate.toml"
    face = "\n".join(f"{k} = {v}" for k, v in TEST_FACE_CONFIG.items())
    config_file.write_text(
        f'[storage]\ndata_dir = "{data_dir}"\nbusy_timeout_s = 120\n'
        f'[model]\npath = "{tiny_model_dir}"\n[face]\n{face}\n'
    )
    storage = StorageConfig(data_dir=data_dir)
    registry = open_registry(storage)
    # The model is known and active already, so the enrollment's first write is its user.
    manifest = tiny_model.manifest
    registry.register_model(manifest.sha256, manifest.name, tiny_model_dir)
    registry.activate_model(manifest.sha256)
    registry.close()

    # Hold the write lock: the enrollment writes its crop files, then blocks in its transaction.
    holder = sqlite3.connect(data_dir / "registry.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    images = person_images(lfw_images, PEOPLE[0], 3)
    log = (tmp_path / "enroll.log").open("w")
    child = subprocess.Popen(
        [sys.executable, "-m", "facegate", "--config", str(config_file), "enroll", "Colin"]
        + [str(p) for p in images],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + 180
        while len(_crop_files(data_dir)) < 3 and child.poll() is None:
            assert time.monotonic() < deadline, "the enrollment never wrote its crops"
            time.sleep(0.1)
        time.sleep(0.5)
        assert child.poll() is None, (tmp_path / "enroll.log").read_text()  # still waiting
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        log.close()
        holder.execute("ROLLBACK")
        holder.close()
    assert child.returncode == -signal.SIGKILL
    assert len(_crop_files(data_dir)) == 3  # written before the transaction: now orphans

    registry = open_registry(storage)
    try:
        assert registry.find_user("Colin") is None
        with registry.engine.connect() as conn:
            for table in ("users", "gallery_images", "embeddings"):
                count = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                assert count == 0, table
        # Opening spares young files (they could belong to a live enrollment); a sweep
        # without the age guard removes them.
        assert len(registry.sweep_orphan_files(min_age_s=0)) == 3
        assert _crop_files(data_dir) == []
    finally:
        registry.close()
