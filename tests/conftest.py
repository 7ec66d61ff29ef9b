"""Shared fixtures: where the LFW test data is, and whether its absence is a failure."""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the root logger (as a program should); undo it after each test so
    one test's configuration does not leak into the next."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"fg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Broker:
    """A real MQTT broker on a free loopback port: mosquitto, else amqtt (embedded Python)."""

    def __init__(self, workdir: Path, extra_config: str = "", persistent: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.workdir = workdir
        self.extra_config = extra_config
        # Persistent: sessions and retained messages survive a restart (saved on stop).
        self.persistent = persistent
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start (or restart) the broker and wait until it accepts connections."""
        mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        if mosquitto:
            conf = self.workdir / "mosquitto.conf"
            persistence = (
                f"persistence true\npersistence_location {self.workdir}/\n"
                if self.persistent
                else "persistence false\n"
            )
            # Keep the test's own user: as root, mosquitto would drop to "mosquitto" and could
            # not write its database into the test's private temp dir.
            conf.write_text(
                f"listener {self.port} {self.host}\nallow_anonymous true\n"
                f"user {getpass.getuser()}\n" + persistence + self.extra_config
            )
            cmd = [mosquitto, "-c", str(conf)]
        else:
            try:
                import amqtt  # noqa: F401
            except ImportError:
                pytest.fail("neither mosquitto nor amqtt is installed: no MQTT broker to test with")
            cmd = [sys.executable, str(ROOT / "tests" / "amqtt_broker.py"), str(self.port)]
        log = open(self.workdir / "broker.log", "ab")  # noqa: SIM115 (kept open for the process)
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex((self.host, self.port)) == 0:
                    return
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"MQTT broker did not start: {(self.workdir / 'broker.log').read_text()}")

    def stop(self) -> None:
        """Stop the broker (clients see the connection drop)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mqtt_broker(tmp_path: Path):
    """A fresh broker per test, stopped afterwards."""
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path):
    """A fresh broker that keeps sessions across its own restarts (mosquitto only)."""
    if not (shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")):
        _require("mosquitto", "a persistent broker needs mosquitto")
    broker = Broker(tmp_path, persistent=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_factory(tmp_path: Path):
    """Start brokers with extra mosquitto configuration: ``make(extra_config) -> Broker``,
    each in its own folder under tmp_path; all are stopped afterwards."""
    started: list[Broker] = []

    def make(extra_config: str = "") -> Broker:
        workdir = tmp_path / f"broker{len(started)}"
        workdir.mkdir()
        broker = Broker(workdir, extra_config=extra_config)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()
