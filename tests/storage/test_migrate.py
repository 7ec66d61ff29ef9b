"""Migrations: from an empty file to head, in step with the models, and newer schemas refused."""

from __future__ import annotations

import subprocess
import sys
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
