"""Storage fixtures: a registry on a real SQLite file, and on PostgreSQL in a private schema
(``pg_schema_url``, shared from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facegate.storage.db import create_engine_for
from facegate.storage.migrate import upgrade
from facegate.storage.registry import Registry


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
