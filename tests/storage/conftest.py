"""Storage fixtures: a registry on a real SQLite file, and on PostgreSQL in a private schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from facegate.storage.db import create_engine_for
from facegate.storage.migrate import upgrade
from facegate.storage.registry import Registry


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"fg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A migrated Registry on a SQLite file, then on PostgreSQL (skipped when unavailable)."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'registry.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    engine = create_engine_for(url, busy_timeout_s=5.0)
    upgrade(engine)
    reg = Registry(engine, data_dir)
    try:
        yield reg
    finally:
        reg.close()
