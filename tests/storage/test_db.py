"""Engines: SQLite pragmas in effect, private files, commit-or-rollback sessions, write locks."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from facegate.errors import StorageError
from facegate.storage.db import create_engine_for, session_scope, writer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """Run with a permissive umask, so private modes must come from the code itself."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_sqlite_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'r.db'}", busy_timeout_s=2.5)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()


def test_database_files_and_directory_are_private(tmp_path: Path, loose_umask: None) -> None:
    db = tmp_path / "deep" / "state" / "r.db"
    engine = create_engine_for(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:  # keep the WAL and shared-memory files in place
        conn.execute(text("SELECT * FROM t")).all()
        assert _mode(db.parent) == 0o700
        assert _mode(db) == 0o600
        for side in ("r.db-wal", "r.db-shm"):
            assert (db.parent / side).exists()
            assert _mode(db.parent / side) == 0o600
    engine.dispose()


def test_existing_loose_database_file_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    create_engine_for(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600


def test_session_scope_commits_or_rolls_back(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    factory = sessionmaker(engine)
    with session_scope(factory) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [1]
    engine.dispose()


def test_write_transactions_wait_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    engine = create_engine_for(f"sqlite:///{db}", busy_timeout_s=10)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    done = threading.Event()

    def write() -> None:
        with writer(engine).begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.3)
    assert not done.is_set()  # blocked on the lock held by ``holder``
    holder.execute("COMMIT")
    holder.close()
    thread.join(timeout=10)
    assert done.is_set()
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT x FROM t")).scalars()) == [1, 2]
    engine.dispose()


def test_bad_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        create_engine_for("not a url")
