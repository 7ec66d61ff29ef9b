"""Engines and sessions: SQLite tuned on connect, private files, and a commit-or-rollback scope.

SQLite runs in WAL mode (readers never wait for the writer), with foreign keys on, a busy
timeout, and ``synchronous=NORMAL`` (durable across a process crash; WAL keeps it consistent
across a power cut). Write transactions begin with ``BEGIN IMMEDIATE`` so a read-then-write
transaction waits for the lock instead of failing when another process wrote meanwhile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import StorageError

logger = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
# Execution option naming an engine whose transactions write (SQLite: BEGIN IMMEDIATE).
_WRITE_OPTION = "facegate_write"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700; return it."""
    path = Path(path)
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o777 != DIR_MODE:
            path.chmod(DIR_MODE)
    except OSError as err:
        raise StorageError(f"cannot create directory {path}: {err.strerror}") from err
    return path


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None (not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists; tighten its mode if it does."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
        os.close(fd)
        if path.stat().st_mode & 0o777 != FILE_MODE:
            path.chmod(FILE_MODE)
    except OSError as err:
        raise StorageError(f"cannot create database file {path}: {err.strerror}") from err


def _tighten_sidecars(db_file: Path) -> None:
    # SQLite gives -wal/-shm the database file's mode; this covers files made before 0600.
    for suffix in ("-wal", "-shm"):
        side = db_file.with_name(db_file.name + suffix)
        try:
            if side.exists() and side.stat().st_mode & 0o777 != FILE_MODE:
                side.chmod(FILE_MODE)
        except OSError as err:
            logger.warning("cannot restrict %s: %s", side, err.strerror)


def create_engine_for(url: str, busy_timeout_s: float = 5.0) -> Engine:
    """An Engine for any SQLAlchemy URL; SQLite files are created 0600 in a 0700 directory."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as err:
        raise StorageError(f"invalid database URL: {err}") from err
    if backend != "sqlite":
        try:
            return create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as err:
            raise StorageError(f"cannot use database URL {url!r}: {err}") from err

    db_file = sqlite_path(url)
    if db_file is not None:
        ensure_private_dir(db_file.parent)
        _private_file(db_file)
    connect_args: dict[str, Any] = {"timeout": busy_timeout_s}
    engine = create_engine(url, connect_args=connect_args)
    timeout_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN can be chosen per engine.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            if db_file is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()
        if db_file is not None:
            _tighten_sidecars(db_file)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """A view of ``engine`` whose transactions take the write lock up front (SQLite)."""
    return engine.execution_options(**{_WRITE_OPTION: True})


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
