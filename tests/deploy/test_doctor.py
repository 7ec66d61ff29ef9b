"""facegate doctor against a healthy installation and broken ones: a real broker with the
deploy/ ACL, a real registry, LFW images as the camera, a tiny saved model."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy_support import PASSWORDS

from facegate.config import FacegateConfig, parse_config
from facegate.doctor import (
    CHECK_NAMES,
    CheckResult,
    bounded,
    check_disk,
    check_time,
    disk_verdict,
    run_checks,
    time_verdict,
)

PERSON = "Colin_Powell"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


@pytest.fixture
def fake_timedatectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put a ``timedatectl`` answering ``answer`` first on PATH (a stand-in for systemd)."""

    def install(answer: str, code: int = 0) -> Path:
        bin_dir = tmp_path / "fakebin"
        bin_dir.mkdir(exist_ok=True)
        tool = bin_dir / "timedatectl"
        tool.write_text(f"#!/bin/sh\necho '{answer}'\nexit {code}\n")
        tool.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return tool

    return install


def site_config(tmp_path: Path, model_dir: Path, broker, frames: Path, **over) -> dict:
    """A config mapping for a door using ``broker`` as user facegate and ``frames`` as camera."""
    data = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "model": {"path": str(model_dir)},
        "mqtt": {"host": broker.host, "port": broker.port, "username": "facegate"},
        "source": {"kind": "folder", "folder": str(frames), "fps": 20, "read_timeout_s": 2},
        "enrollment": {"duplicate_similarity": 0.99999},
    }
    for section, values in over.items():
        data[section] = {**data.get(section, {}), **values}
    return data


@pytest.fixture
def frames(tmp_path: Path, lfw_images: Path) -> Path:
    """A folder source with two LFW faces."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for src in sorted((lfw_images / PERSON).glob("*.jpg"))[:2]:
        shutil.copy(src, folder / src.name)
    return folder


@pytest.fixture
def credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The broker password as systemd hands it over: $CREDENTIALS_DIRECTORY/mqtt_password."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt_password").write_text(PASSWORDS["facegate"] + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    return creds / "mqtt_password"


@pytest.fixture(scope="session")
def enrolled_data_dir(tmp_path_factory, tiny_model_dir: Path, lfw_images: Path) -> Path:
    """A data dir made once: the tiny model registered and active, one person enrolled."""
    from facegate.enrollment.enroll import enroll, register_model
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    data_dir = tmp_path_factory.mktemp("enrolled") / "data"
    config = parse_config(
        {
            "storage": {"data_dir": str(data_dir)},
            "model": {"path": str(tiny_model_dir)},
            "enrollment": {"duplicate_similarity": 0.99999},
        }
    )
    registry = open_registry(config.storage)
    try:
        pipeline, model = load_tools(registry, config)
        register_model(registry, model)
        images = sorted((lfw_images / PERSON).glob("*.jpg"))[:4]
        enroll(registry, pipeline, model, "Ada", images, config)
    finally:
        registry.close()
    return data_dir


@pytest.fixture
def enrolled(tmp_path: Path, tiny_model_dir: Path, acl_broker, frames, enrolled_data_dir) -> dict:
    """A healthy site (a copy of the enrolled data dir) served by the ACL broker."""
    data = site_config(tmp_path, tiny_model_dir, acl_broker, frames)
    shutil.copytree(enrolled_data_dir, data["storage"]["data_dir"])
    return data


@pytest.mark.slow
def test_healthy_site_passes_every_check(enrolled, credential, fake_timedatectl) -> None:
    fake_timedatectl("yes")
    config = parse_config(enrolled)
    results = run_checks(config, Path("facegate.toml"), timeout_s=20)
    assert [r.name for r in results] == list(CHECK_NAMES)
    got = _by_name(results)
    for name in ("config", "camera", "broker", "registry", "model", "galleries", "time"):
        assert got[name].status == "ok", got[name]
    assert got["disk"].ok
    assert "250x250 frame" in got["camera"].detail
    assert "as facegate" in got["broker"].detail
    assert "1 active users, 4 images embedded" in got["galleries"].detail
    assert "active model" in got["model"].detail


def test_broker_port_closed(tmp_path, tiny_model_dir, acl_broker, frames, credential) -> None:
    data = site_config(tmp_path, tiny_model_dir, acl_broker, frames, mqtt={"port": _free_port()})
    result = run_checks(parse_config(data), only=["broker"], timeout_s=8)[0]
    assert result.status == "fail"
    assert "refused" in result.detail.lower()
    assert "start the broker" in result.fix


def test_wrong_password_on_acl_broker(
    tmp_path, tiny_model_dir, acl_broker, frames, monkeypatch
) -> None:
    monkeypatch.setenv("FACEGATE_TEST_MQTT_PASSWORD", "not-the-password")
    data = site_config(
        tmp_path,
        tiny_model_dir,
        acl_broker,
        frames,
        mqtt={"password_env": "FACEGATE_TEST_MQTT_PASSWORD"},
    )
    result = run_checks(parse_config(data), only=["broker"], timeout_s=8)[0]
    assert result.status == "fail"
    assert "Not authorized" in result.detail
    assert "mosquitto_passwd" in result.fix
    assert "not-the-password" not in result.detail + result.fix


def test_user_without_write_access_fails_on_the_acl(
    tmp_path, tiny_model_dir, acl_broker, frames, monkeypatch
) -> None:
    """The doorbell's login works, but the ACL refuses its publish to the health topic."""
    monkeypatch.setenv("FACEGATE_TEST_MQTT_PASSWORD", PASSWORDS["doorbell"])
    mqtt = {"username": "doorbell", "password_env": "FACEGATE_TEST_MQTT_PASSWORD"}
    data = site_config(tmp_path, tiny_model_dir, acl_broker, frames, mqtt=mqtt)
    result = run_checks(parse_config(data), only=["broker"], timeout_s=8)[0]
    assert result.status == "fail"
    assert "facegate/front_door/health refused: Not authorized" in result.detail
    assert "ACL" in result.fix


def test_missing_camera_index(tmp_path, tiny_model_dir, acl_broker, frames) -> None:
    data = site_config(
        tmp_path, tiny_model_dir, acl_broker, frames, source={"kind": "camera", "camera": 63}
    )
    started = time.monotonic()
    result = run_checks(parse_config(data), only=["camera"], timeout_s=10)[0]
    assert result.status == "fail"
    assert "camera:63" in result.detail
    assert "/dev/video63" in result.fix
    assert time.monotonic() - started < 10


def test_no_source_skips_the_camera(tmp_path, tiny_model_dir, acl_broker, frames) -> None:
    data = site_config(tmp_path, tiny_model_dir, acl_broker, frames, source={"kind": "none"})
    assert run_checks(parse_config(data), only=["camera"])[0].status == "skip"


def test_model_with_a_flipped_byte(tmp_path, tiny_model_dir, acl_broker, frames) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.keras"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    weights.write_bytes(bytes(raw))
    data = site_config(tmp_path, broken, acl_broker, frames)
    results = _by_name(run_checks(parse_config(data), only=["model", "galleries"]))
    assert results["model"].status == "fail"
    assert "does not match the manifest" in results["model"].detail
    assert f"restore {broken}" in results["model"].fix
    assert results["galleries"].status == "skip"


def test_registry_not_migrated(tmp_path, tiny_model_dir, acl_broker, frames) -> None:
    data = site_config(tmp_path, tiny_model_dir, acl_broker, frames)
    result = run_checks(parse_config(data), only=["registry"])[0]
    assert result.status == "fail"
    assert "schema empty" in result.detail
    assert "facegate db upgrade" in result.fix


def test_gallery_without_embeddings_warns(enrolled, credential) -> None:
    from facegate.storage.registry import open_registry

    config = parse_config(enrolled)
    registry = open_registry(config.storage)
    try:
        active = registry.active_model()
        assert active is not None
        registry.delete_embeddings(active.sha256)
    finally:
        registry.close()
    result = _by_name(run_checks(config, only=["galleries"]))["galleries"]
    assert result.status == "warn" and result.ok
    assert "4 gallery images have no embedding" in result.detail
    assert "restart facegate" in result.fix


def _read_only_doctor(config_file: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """``facegate doctor --check registry`` with ``data_dir`` read-only: a read-only bind mount
    in a private mount namespace when root (root ignores permission bits), else chmod."""
    cmd = [sys.executable, "-m", "facegate", "--config", str(config_file), "doctor"]
    cmd += ["--check", "registry"]
    if os.geteuid() != 0:
        data_dir.chmod(0o500)
        for path in data_dir.iterdir():
            path.chmod(stat.S_IRUSR)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare: cannot make a directory read-only")
    script = (
        f'mount --bind "{data_dir}" "{data_dir}" && '
        f'mount -o remount,bind,ro "{data_dir}" && exec "$@"'
    )
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", "true"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {probe.stderr.decode().strip()}")
    return subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", *cmd],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_read_only_data_dir(enrolled, tmp_path: Path) -> None:
    config_file = tmp_path / "facegate.toml"
    data = enrolled
    lines = [f'[storage]\ndata_dir = "{data["storage"]["data_dir"]}"']
    config_file.write_text("\n".join(lines) + "\n")
    done = _read_only_doctor(config_file, Path(data["storage"]["data_dir"]))
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if " registry " in x)
    assert line.startswith("FAIL")
    assert "Read-only file system" in line or "Permission denied" in line
    assert "-> fix: make" in line and "writable by the service user" in line


@pytest.mark.parametrize(
    ("code", "output", "status"),
    [
        (0, "yes\n", "ok"),
        (0, "no\n", "fail"),
        (1, "System has not been booted with systemd as init system (PID 1).", "warn"),
        (None, "", "warn"),
        (0, "maybe", "warn"),
    ],
)
def test_time_verdicts(code: int | None, output: str, status: str) -> None:
    result = time_verdict(code, output)
    assert result.status == status
    assert (result.fix != "") == (status != "ok")


def test_check_time_runs_timedatectl(fake_timedatectl) -> None:
    tool = fake_timedatectl("no")
    result = check_time(str(tool))
    assert result.status == "fail" and "timedatectl set-ntp true" in result.fix
    assert check_time("no-such-timedatectl-here").status == "warn"


@pytest.mark.parametrize(
    ("free", "status"), [(5 << 30, "ok"), (500 << 20, "warn"), (100 << 20, "fail")]
)
def test_disk_verdicts(free: int, status: str) -> None:
    assert disk_verdict(Path("/var/lib/facegate"), free).status == status


def test_check_disk_on_a_real_file_system(tmp_path: Path) -> None:
    assert check_disk(tmp_path / "not" / "yet").status in ("ok", "warn", "fail")
    assert check_disk(tmp_path, warn_bytes=1 << 62, fail_bytes=1 << 61).status == "fail"


def test_bounded_reports_a_hung_check() -> None:
    def hang() -> CheckResult:
        time.sleep(5)
        raise AssertionError("unreachable")

    started = time.monotonic()
    result = bounded("camera", hang, 0.3)
    assert result.status == "fail" and "no answer within" in result.detail
    assert time.monotonic() - started < 2


def test_config_check_warns_on_a_password_in_the_file() -> None:
    config = FacegateConfig.model_validate({"mqtt": {"password": "hunter2-secret"}})
    result = run_checks(config, only=["config"])[0]
    assert result.status == "warn" and "LoadCredential" in result.fix
    assert "hunter2-secret" not in result.detail + result.fix
