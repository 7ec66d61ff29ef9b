"""Shared fixtures: where the LFW test data is, and whether its absence is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    return Path(os.environ.get("FACEGATE_TEST_DATA", ROOT.parent / "shared" / "data"))


def _require(what: str, reason: str) -> None:
    """Skip with ``reason``; in CI (FACEGATE_REQUIRE_TEST_DATA=1) fail instead."""
    if os.environ.get("FACEGATE_REQUIRE_TEST_DATA") == "1":
        pytest.fail(f"{what} is required here (FACEGATE_REQUIRE_TEST_DATA=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    """The LFW folder (``lfw-deepfunneled/`` and ``protocol/``), or skip when absent."""
    root = _data_root() / "lfw"
    if not (root / "lfw-deepfunneled").is_dir():
        _require("LFW data", f"LFW not found at {root}; set FACEGATE_TEST_DATA to ../shared/data")
    return root


@pytest.fixture(scope="session")
def lfw_images(lfw_root: Path) -> Path:
    """The deep-funneled image tree ``<Person>/<Person>_0001.jpg``."""
    return lfw_root / "lfw-deepfunneled"


@pytest.fixture(scope="session")
def lfw_protocol(lfw_root: Path) -> Path:
    """The folder holding pairs.txt, pairsDevTrain.txt and pairsDevTest.txt."""
    return lfw_root / "protocol"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL SQLAlchemy URL from FACEGATE_TEST_POSTGRES_URL, or skip."""
    url = os.environ.get("FACEGATE_TEST_POSTGRES_URL")
    if not url:
        _require("PostgreSQL", "FACEGATE_TEST_POSTGRES_URL is not set")
    return url
