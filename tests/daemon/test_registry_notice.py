"""The registry-changed notice: what counts as a change, and a broker that is not there."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from facegate.config import FacegateConfig
from facegate.daemon.registry_notice import announce_registry_change


def test_revision_moves_with_changes_and_not_with_reads(site: FacegateConfig) -> None:
    from facegate.storage.registry import open_registry

    registry = open_registry(site.storage)
    try:
        start = registry.revision()
        registry.list_users()
        registry.access_log(limit=5)
        assert registry.revision() == start
        registry.update_user("Ada", active=False)
        disabled = registry.revision()
        assert disabled != start
        registry.delete_user("Ada")
        assert registry.revision() not in (start, disabled)
    finally:
        registry.close()


def test_no_broker_costs_a_warning_not_the_command(
    site: FacegateConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = site.model_dump(mode="json")
    data["mqtt"].update(port=port, password="")
    config = FacegateConfig.model_validate(data)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert announce_registry_change(config, timeout_s=1.0) is False
    assert time.monotonic() - started < 5
    assert "they poll for it" in caplog.text
