"""Reliability fixtures: the daemon test site (tiny model, enrolled registry)."""

from daemon_site import exact_model_dir, site  # noqa: F401
