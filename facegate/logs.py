"""Logging set-up: configured once, by the entry point, to stderr (journald picks it up)."""

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when configured,
    so a replaced stderr (a test's capture, a redirected CLI run) never leaves it writing to
    a closed stream."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it; the live stderr wins
        pass


def setup_logging(level: str = "INFO") -> None:
    """Send log records at ``level`` and above to stderr; quieten chatty libraries."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
