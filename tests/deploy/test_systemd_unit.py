"""deploy/systemd: the units' keys, `systemd-analyze verify`, and the sysusers snippet."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_support import DEPLOY

SYSTEMD_DIR = DEPLOY / "systemd"
SERVICE = SYSTEMD_DIR / "facegate.service"
DOCTOR = SYSTEMD_DIR / "facegate-doctor.service"
SYSUSERS = SYSTEMD_DIR / "facegate.sysusers.conf"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """A systemd unit as {section: {key: [values in order]}} (keys may repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def _one(unit: Unit, key: str) -> str:
    values = unit["Service"].get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "WatchdogSec": "30",
    "Restart": "on-failure",
    "RestartSec": "5",
    "User": "facegate",
    "Group": "facegate",
    "SupplementaryGroups": "video",
    "StateDirectory": "facegate",
    "StateDirectoryMode": "0700",
    "ConfigurationDirectory": "facegate",
    "LoadCredential": "mqtt_password:/etc/facegate/mqtt_password",
    "ExecStart": "/opt/facegate/bin/facegate run --config /etc/facegate/facegate.toml",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "no",
    "DevicePolicy": "closed",
    "DeviceAllow": "char-video4linux rw",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "LockPersonality": "yes",
    "UMask": "0077",
    "SystemCallArchitectures": "native",
}


@pytest.mark.parametrize(("key", "value"), sorted(REQUIRED.items()))
def test_service_has_required_key(key: str, value: str) -> None:
    assert _one(parse_unit(SERVICE.read_text()), key) == value


def test_service_sections_and_install() -> None:
    unit = parse_unit(SERVICE.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]


def test_memory_deny_write_execute_is_left_out_with_a_reason() -> None:
    """TensorFlow's oneDNN JIT needs W+X memory: the key is absent and the comment says why."""
    text = SERVICE.read_text()
    assert "MemoryDenyWriteExecute" not in parse_unit(text)["Service"]
    assert "# MemoryDenyWriteExecute=yes is left out on purpose" in text
    assert "#DeviceAllow=char-gpiochip rw" in text  # the relay's device, documented


def test_doctor_unit_runs_in_the_same_sandbox() -> None:
    """facegate-doctor.service sees what the daemon sees: same user, credential and sandbox."""
    service = parse_unit(SERVICE.read_text())["Service"]
    doctor = parse_unit(DOCTOR.read_text())["Service"]
    daemon_only = {
        "Type",
        "NotifyAccess",
        "WatchdogSec",
        "TimeoutStartSec",
        "TimeoutStopSec",
        "Restart",
        "RestartSec",
        "ExecStart",
    }
    shared = {k: v for k, v in service.items() if k not in daemon_only}
    assert {k: v for k, v in doctor.items() if k in shared} == shared
    assert set(doctor) - set(shared) == {"Type", "ExecStart"}
    assert doctor["Type"] == ["oneshot"]
    assert doctor["ExecStart"] == [
        "/opt/facegate/bin/facegate doctor --config /etc/facegate/facegate.toml"
    ]


def _verifiable_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at /bin/true: verify checks that the binary exists,
    and /opt/facegate is not installed on a build machine."""
    lines = [
        "ExecStart=/bin/true" if line.startswith("ExecStart=") else line
        for line in unit.read_text().splitlines()
    ]
    copy = tmp_path / unit.name
    copy.write_text("\n".join(lines) + "\n")
    return copy


@pytest.mark.parametrize("unit", [SERVICE, DOCTOR], ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    copy = _verifiable_copy(unit, tmp_path)
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    # Unknown keys and bad values are only warnings (exit 0): any output about the unit fails.
    about_unit = [line for line in done.stderr.splitlines() if unit.name in line]
    assert done.returncode == 0 and not about_unit, done.stderr


def test_systemd_analyze_catches_a_typo(tmp_path: Path) -> None:
    """The verify test can fail: a misspelt key is reported."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    copy = _verifiable_copy(SERVICE, tmp_path)
    copy.write_text(copy.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert "Unknown key 'ProtectHomes'" in done.stderr


def test_sysusers_creates_the_service_user(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed (apt-get install systemd)")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSUSERS)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
    }
    assert passwd["facegate"][5:] == ["/var/lib/facegate", "/usr/sbin/nologin"]
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc" / "group").read_text().splitlines()
    }
    assert "facegate" in groups["video"]
