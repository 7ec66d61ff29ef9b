"""Migrations: from an empty file to head, in step with the models, and newer schemas refused."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from facegate.config import StorageConfig
from facegate.errors import StorageError
from facegate.storage.db import create_engine_for
from facegate.storage.migrate import head_revision, schema_status, upgrade
from facegate.storage.registry import open_registry
from facegate.storage.schema import Base

TABLES = {
    "users",
    "gallery_images",
    "embeddings",
    "model_versions",
    "access_log",
    "outbox",
    "door_state",
    "job_runs",
}


def test_upgrade_from_an_empty_file_creates_every_table(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'r.db'}")
    assert schema_status(engine).current is None
    status = upgrade(engine)
    assert status.up_to_date and status.current == head_revision()
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) >= TABLES
    indexes = {ix["name"] for ix in inspector.get_indexes("access_log")}
    assert {"ix_access_log_time", "ix_access_log_door_time"} <= indexes
    assert upgrade(engine).current == status.current  # idempotent
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_the_models(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'r.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    engine = create_engine_for(url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_a_newer_registry_is_refused(tmp_path: Path) -> None:
    config = StorageConfig(data_dir=tmp_path / "data")
    open_registry(config).close()
    engine = create_engine_for(config.resolved_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d0999'"))
    engine.dispose()
    with pytest.raises(StorageError, match="registry schema f00d0999 is newer than this facegate"):
        open_registry(config)


def test_open_registry_creates_a_private_data_dir(tmp_path: Path) -> None:
    config = StorageConfig(data_dir=tmp_path / "fresh" / "data")
    registry = open_registry(config)
    registry.close()
    assert (config.data_dir / "registry.db").is_file()
    assert config.data_dir.stat().st_mode & 0o777 == 0o700


def test_two_processes_opening_a_new_registry_at_once_both_succeed(tmp_path: Path) -> None:
    config = StorageConfig(data_dir=tmp_path / "data")
    script = (
        "import sys; from pathlib import Path; from facegate.config import StorageConfig; "
        "from facegate.storage.registry import open_registry; "
        "open_registry(StorageConfig(data_dir=Path(sys.argv[1]))).close()"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(config.data_dir)], stderr=PIPE)
        for _ in range(3)
    ]
    errors = [child.communicate(timeout=120)[1].decode() for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    engine = create_engine_for(config.resolved_url)
    assert schema_status(engine).up_to_date
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_session_1_registry_upgrades_and_its_crops_stay_usable(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A registry as schema 0001 left it (crops aligned for the enrolling model, no
    landmarks) upgrades in place; its images read back as legacy crops that are resized."""
    import numpy as np
    from sqlalchemy import MetaData, insert

    from facegate.enrollment.embedding import model_crop
    from facegate.face.align import default_spec
    from facegate.storage.files import CropStore, encode_crop
    from facegate.storage.registry import Registry

    data_dir = tmp_path / "data"
    url = (
        f"sqlite:///{tmp_path / 'r.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    engine = create_engine_for(url)
    assert upgrade(engine, "0001").current == "0001"
    crop = np.random.default_rng(3).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    encoded = encode_crop(crop)
    CropStore(data_dir).write(encoded)
    tables = MetaData()
    tables.reflect(engine, only=["users", "gallery_images", "embeddings"])
    when = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(tables.tables["users"]).values(
                id=1, name="ann", display_name="Ann", created_at=when, updated_at=when
            )
        )
        conn.execute(
            insert(tables.tables["gallery_images"]).values(
                id=1,
                user_id=1,
                sha256=encoded.sha256,
                path=encoded.relative_path,
                quality=0.8,
                source="ann.jpg",
                added_at=when,
            )
        )
        vector = np.arange(4, dtype="<f4").tobytes()
        conn.execute(
            insert(tables.tables["embeddings"]).values(
                image_id=1, model_sha256="a" * 64, dim=4, vector=vector
            )
        )

    assert upgrade(engine).current == head_revision()
    assert "landmarks" in {c["name"] for c in inspect(engine).get_columns("gallery_images")}
    registry = Registry(engine, data_dir)
    try:
        (image,) = registry.gallery("ann")
        assert image.legacy and image.landmarks is None and image.added_at == when
        assert np.array_equal(registry.read_crop(image), crop)
        assert np.array_equal(registry.get_embeddings("a" * 64)[1], np.arange(4))
        resized = model_crop(registry.read_crop(image), image.landmarks, default_spec(96))
        assert resized.shape == (96, 96, 3)
    finally:
        registry.close()
