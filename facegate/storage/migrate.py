"""Schema migrations through Alembic's API: no alembic.ini, the scripts ship in the package."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from facegate.errors import StorageError
from facegate.storage.db import writer

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a registry's schema stands: its revision (None when empty) and this code's head."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """True when the registry is at this code's newest revision."""
        return self.current == self.head


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = _scripts().get_current_head()
    if head is None:  # only possible with a broken installation
        raise StorageError("no schema migrations found in the facegate package")
    return head


def schema_status(engine: Engine) -> SchemaStatus:
    """Read the registry's schema revision; refuse one newer than this code."""
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as err:
        raise StorageError(f"cannot read the registry schema version: {err}") from err
    if current is not None and not _known_revision(current):
        raise StorageError(
            f"registry schema {current} is newer than this facegate; upgrade facegate"
        )
    return SchemaStatus(current=current, head=head_revision())


def _known_revision(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine, target: str | None = None) -> SchemaStatus:
    """Bring the registry schema to ``target`` (default: this code's head); return the status.

    An older ``target`` exists for tests that build a registry as an earlier release left it.
    """
    before = schema_status(engine)
    goal = target or before.head
    if before.current == goal:
        return before
    config = _alembic_config()
    try:
        # Take the write lock first, so two processes opening a new registry at once do not
        # both create it: alembic reads the revision again under the lock and skips done work.
        with writer(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, goal)
    except (SQLAlchemyError, CommandError) as err:
        raise StorageError(f"registry schema upgrade failed: {err}") from err
    logger.info("registry schema upgraded from %s to %s", before.current or "empty", goal)
    return SchemaStatus(current=goal, head=before.head)
