"""Daemon test fixtures (shared with tests/reliability through daemon_site)."""

from daemon_site import exact_model_dir, site  # noqa: F401
