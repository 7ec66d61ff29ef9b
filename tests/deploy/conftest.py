"""Fixtures for the deploy/ files: a broker running deploy/mosquitto's configuration and ACL
with a real password file, throwaway TLS certificates, and a tiny saved model."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daemon_site import exact_model_dir  # noqa: F401
from deploy_support import (
    MOSQUITTO_DIR,
    PASSWORDS,
    deploy_broker_config,
    make_password_file,
    need_tool,
)


@dataclass
class AclBroker:
    """A started broker with deploy/'s configuration; ``passwords`` are its users'."""

    broker: Any
    passwords: dict[str, str]
    passwd_file: Path

    @property
    def host(self) -> str:
        """Loopback address."""
        return self.broker.host

    @property
    def port(self) -> int:
        """The plain listener's port."""
        return self.broker.port


@pytest.fixture
def acl_broker(tmp_path: Path, broker_factory) -> AclBroker:
    """mosquitto started with deploy/mosquitto's config and ACL and a fresh password file."""
    need_tool("mosquitto")
    passwd = make_password_file(tmp_path / "passwd", PASSWORDS)
    broker = broker_factory(deploy_broker_config(passwd, MOSQUITTO_DIR / "acl"))
    return AclBroker(broker, dict(PASSWORDS), passwd)


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""

    ca: Path
    cert: Path
    key: Path
    # A second CA that signed nothing here: a client trusting only it must fail the handshake.
    other_ca: Path


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """Generate a CA and a server certificate signed by it with openssl, in tmp_path."""
    openssl = need_tool("openssl")
    d = tmp_path / "tls"
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))  # fmt: skip
    (d / "san.ext").write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
        "-extfile", str(d / "san.ext"), "-out", str(d / "server.crt"))  # fmt: skip
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
        "-keyout", str(d / "other.key"), "-out", str(d / "other.crt"))  # fmt: skip
    return TlsFiles(d / "ca.crt", d / "server.crt", d / "server.key", d / "other.crt")


@pytest.fixture(scope="session")
def tiny_model_dir(exact_model_dir: Path) -> Path:  # noqa: F811 (the fixture, by name)
    """The daemon tests' tiny model (untrained tower, hand-set head): fast to load."""
    return exact_model_dir
