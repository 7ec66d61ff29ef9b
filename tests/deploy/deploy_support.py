"""Helpers for the deploy/ tests: paths, test passwords, the broker configuration built from
deploy/mosquitto, password files made with mosquitto_passwd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MOSQUITTO_DIR = DEPLOY / "mosquitto"
PASSWORDS = {"facegate": "fg-secret-1", "doorbell": "bell-secret-2", "homeassistant": "ha-secret-3"}


def need_tool(tool: str) -> str:
    """The path of an installed tool, or skip the test naming the package to install."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install mosquitto openssl)")
    return path


def deploy_broker_config(passwd: Path, acl: Path, tls_listener: str = "") -> str:
    """deploy/mosquitto/mosquitto.conf with its file paths pointed at ``passwd`` and ``acl``,
    its port-1883 listener dropped (the test Broker adds one on a free loopback port) and
    ``tls_listener`` appended."""
    lines = []
    for line in (MOSQUITTO_DIR / "mosquitto.conf").read_text().splitlines():
        if line.startswith("password_file "):
            line = f"password_file {passwd}"
        elif line.startswith("acl_file "):
            line = f"acl_file {acl}"
        elif line.startswith("listener "):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n" + tls_listener


def make_password_file(path: Path, passwords: dict[str, str]) -> Path:
    """A mosquitto password file made with ``mosquitto_passwd -b``, as the guide does."""
    tool = need_tool("mosquitto_passwd")
    path.write_text("")
    for user, password in passwords.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, timeout=30)
    return path
