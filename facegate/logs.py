"""Logging set-up: configured once, by the entry point, to stderr (journald picks it up)."""

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Send log records at ``level`` and above to stderr; quieten chatty libraries."""
    logging.basicConfig(level=level.upper(), format=_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
