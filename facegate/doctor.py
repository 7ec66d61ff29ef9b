"""``facegate doctor``: health checks of one installation, each one line with a fix.

Every check returns a ``CheckResult`` and never raises; each runs under a time bound, so a
hung camera or a broker that never answers cannot hang the doctor. The verdict logic (disk
thresholds, the NTP answer) is in small pure functions. Heavy imports (OpenCV, TensorFlow,
paho) happen inside the checks that need them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from facegate.config import FacegateConfig, StorageConfig, mqtt_password
from facegate.errors import FacegateError

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel
    from facegate.storage.registry import Registry

logger = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail", "skip"]

# Free space in the data directory (bytes): below FAIL captures and the registry may fail to
# write; below WARN there is little room for captures and model versions.
DISK_WARN_BYTES = 1 << 30
DISK_FAIL_BYTES = 200 * 1000 * 1000
DEFAULT_TIMEOUT_S = 20.0
# Loading a model imports TensorFlow, which takes several seconds on a small board.
MODEL_TIMEOUT_S = 120.0
CHECK_NAMES = ("config", "camera", "broker", "registry", "model", "galleries", "time", "disk")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``ok`` is False only for ``status == "fail"``; ``fix`` says what
    to do (empty when nothing needs doing)."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """False when this check fails the doctor (exit 1); warnings and skips pass."""
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return {**asdict(self), "ok": self.ok}


def _result(name: str, status: Status, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, status, " ".join(detail.split()), fix)


def bounded(name: str, fn: Callable[[], CheckResult], timeout_s: float) -> CheckResult:
    """Run a check on a daemon thread; a fail record when it raises or outlives ``timeout_s``."""
    box: list[CheckResult] = []

    def target() -> None:
        try:
            box.append(fn())
        except FacegateError as err:
            box.append(_result(name, "fail", str(err), "see the message"))
        except Exception as err:  # a check must report, never crash the doctor
            logger.debug("check %s raised", name, exc_info=True)
            box.append(_result(name, "fail", f"{type(err).__name__}: {err}", "see the message"))

    thread = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if box:
        return box[0]
    return _result(
        name, "fail", f"no answer within {timeout_s:.0f} s", "see the service log for a hung device"
    )


# -- pure verdicts ---------------------------------------------------------------------------


def disk_verdict(
    path: Path,
    free_bytes: int,
    warn_bytes: int = DISK_WARN_BYTES,
    fail_bytes: int = DISK_FAIL_BYTES,
) -> CheckResult:
    """Judge ``free_bytes`` of free space at ``path`` against the thresholds."""
    detail = f"{free_bytes / 1e9:.2f} GB free in {path}"
    fix = f"free space on the file system of {path} (old captures: capture.retention_days)"
    if free_bytes < fail_bytes:
        return _result("disk", "fail", f"{detail} (below {fail_bytes / 1e6:.0f} MB)", fix)
    if free_bytes < warn_bytes:
        return _result("disk", "warn", f"{detail} (below {warn_bytes / 1e9:.1f} GB)", fix)
    return _result("disk", "ok", detail)


def time_verdict(returncode: int | None, output: str) -> CheckResult:
    """Judge ``timedatectl show -p NTPSynchronized --value`` (None: the tool is missing)."""
    text = output.strip()
    answer = text.lower()
    if returncode == 0 and answer == "yes":
        return _result("time", "ok", "clock synchronised (NTP)")
    if returncode == 0 and answer == "no":
        return _result(
            "time",
            "fail",
            "clock not synchronised: schedules, validity dates and TLS need the right time",
            "enable NTP: sudo timedatectl set-ntp true (and check the network)",
        )
    why = "timedatectl not found" if returncode is None else (text or f"exit {returncode}")
    return _result(
        "time",
        "warn",
        f"unknown ({why.splitlines()[0][:120]})",
        "check the clock by hand (date -u); on systemd hosts use systemd-timesyncd",
    )


# -- checks ----------------------------------------------------------------------------------


def check_config(config: FacegateConfig, path: Path | None) -> CheckResult:
    """The configuration loaded (it did, or the doctor would not run); warn on a password in
    the file where the systemd credential or an environment variable would do."""
    where = str(path) if path else "built-in defaults"
    detail = f"{where}: door {config.door}, registry {_safe_url(config.storage.resolved_url)}"
    if config.mqtt.password.get_secret_value():
        return _result(
            "config",
            "warn",
            f"{detail}; mqtt.password is in the file",
            'move it to /etc/facegate/mqtt_password (LoadCredential) and set password = ""',
        )
    return _result("config", "ok", detail)


def _safe_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/")[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def check_camera(config: FacegateConfig, timeout_s: float = 10.0) -> CheckResult:
    """The configured frame source opens and yields a frame within ``timeout_s``."""
    source_config = config.source
    if source_config.kind == "none":
        return _result("camera", "skip", 'source.kind = "none": images arrive over MQTT only')
    from facegate.daemon.sources import make_source

    lost: list[str] = []
    lost_event = threading.Event()

    def on_health(kind: str, message: str) -> None:
        if kind == "source_lost":
            lost.append(message)
            lost_event.set()

    source = make_source(source_config, on_health)
    started = time.monotonic()
    source.start()
    try:
        frame = None
        deadline = started + timeout_s
        while frame is None and not lost_event.is_set() and time.monotonic() < deadline:
            frame = source.latest(0.1)
    finally:
        source.stop()
    if frame is not None:
        height, width = frame.image.shape[:2]
        took = time.monotonic() - started
        return _result("camera", "ok", f"{frame.source}: {width}x{height} frame in {took:.1f} s")
    why = lost[0] if lost else f"{source.name}: no frame within {timeout_s:.0f} s"
    return _result("camera", "fail", why, _camera_fix(config))


def _camera_fix(config: FacegateConfig) -> str:
    source = config.source
    if source.kind == "camera":
        return (
            f"check that /dev/video{source.camera} exists (ls /dev/video*), that the service "
            "user is in group video, and source.camera; stop facegate.service first (it holds "
            "the camera)"
        )
    if source.kind == "folder":
        return f"put images in {source.folder} or fix source.folder"
    return "check source.url (reachable from this host? credentials?) with ffprobe or VLC"


def check_broker(config: FacegateConfig, timeout_s: float = 5.0) -> CheckResult:
    """The broker accepts the door's credentials, a QoS 1 publish on the door's health topic
    and the door's subscriptions, each answered within ``timeout_s``."""
    from facegate.daemon.mqtt_link import HA_STATUS_SUFFIX
    from facegate.daemon.mqtt_probe import probe_broker
    from facegate.daemon.topics import DoorTopics

    mqtt = config.mqtt
    topics = DoorTopics(mqtt.base_topic, config.door)
    try:
        password = mqtt_password(mqtt)
    except FacegateError as err:
        return _result("broker", "fail", str(err), "set the variable or use the credential")
    payload = json.dumps(
        {"event": "doctor", "message": "facegate doctor broker check", "time": _now()}
    ).encode()
    probe = probe_broker(
        mqtt,
        password,
        publish_topic=topics.health,
        payload=payload,
        subscribe_topics=(*topics.subscriptions, f"{mqtt.discovery_prefix}/{HA_STATUS_SUFFIX}"),
        timeout_s=timeout_s,
        client_id=f"facegate-doctor-{config.door}-{os.getpid()}",
    )
    if probe.ok:
        user = mqtt.username or "anonymous"
        tls = ", TLS" if mqtt.tls else ""
        return _result("broker", "ok", f"{probe.detail} as {user}{tls}")
    return _result("broker", "fail", probe.detail, _broker_fix(config, probe.stage, probe.detail))


def _broker_fix(config: FacegateConfig, stage: str, detail: str) -> str:
    mqtt = config.mqtt
    if stage == "connect" and ("refused:" in detail or "authori" in detail.lower()):
        return (
            f"check mqtt.username ({mqtt.username or 'empty'}) and the password "
            "(/etc/facegate/mqtt_password) against the broker's password file (mosquitto_passwd)"
        )
    if stage == "connect" and "TLS" in detail:
        return "check mqtt.ca_file and that the broker's certificate names mqtt.host"
    if stage == "connect":
        return (
            f"start the broker or fix mqtt.host/mqtt.port ({mqtt.host}:{mqtt.port}); "
            "is a firewall in the way?"
        )
    return (
        f"let user {mqtt.username or 'anonymous'} write {mqtt.base_topic}/# and read the door's "
        "topics in the broker's ACL (deploy/mosquitto/acl)"
    )


def open_registry_checked(storage: StorageConfig) -> tuple[CheckResult, Registry | None]:
    """Open the registry without migrating it: schema at head, a rolled-back write, and a file
    written and removed in the data directory. The registry is returned open when it passed."""
    from facegate.errors import StorageError
    from facegate.storage.db import create_engine_for
    from facegate.storage.migrate import schema_status
    from facegate.storage.registry import Registry

    url = _safe_url(storage.resolved_url)
    owner_fix = (
        f"make {storage.data_dir} writable by the service user "
        "(sudo chown -R facegate:facegate DIR; chmod 700 DIR)"
    )
    try:
        engine = create_engine_for(storage.resolved_url, storage.busy_timeout_s)
    except StorageError as err:
        return _result("registry", "fail", str(err), owner_fix), None
    try:
        status = schema_status(engine)
        if not status.up_to_date:
            engine.dispose()
            where = status.current or "empty"
            return (
                _result(
                    "registry",
                    "fail",
                    f"{url}: schema {where}, this facegate needs {status.head}",
                    "run: facegate db upgrade (facegate run also migrates at start)",
                ),
                None,
            )
        registry = Registry(engine, storage.data_dir)
        registry.probe_write()
        _probe_dir(storage.data_dir)
    except StorageError as err:
        engine.dispose()
        return _result("registry", "fail", str(err), owner_fix), None
    return _result("registry", "ok", f"{url}: schema {status.current}, writable"), registry


def _probe_dir(data_dir: Path) -> None:
    """Create and remove a file in the data directory (crops and captures are written there)."""
    from facegate.errors import StorageError

    probe = Path(data_dir) / f".doctor-{os.getpid()}"
    try:
        probe.write_bytes(b"facegate doctor\n")
        probe.unlink()
    except OSError as err:
        raise StorageError(f"cannot write in {data_dir}: {err.strerror or err}") from err


def load_model_checked(
    config: FacegateConfig, registry: Registry | None
) -> tuple[CheckResult, LoadedModel | None]:
    """The model the daemon would serve: its hash matches its manifest, it loads, and it is
    the registry's active model when one is active."""
    from facegate.enrollment.loading import choose_model_dir
    from facegate.model.bundle import load_model_dir, resolve_model_dir, verify_weights
    from facegate.model.manifest import Manifest

    configured = config.model.path
    model_dir = choose_model_dir(registry, config) if registry is not None else configured
    where = resolve_model_dir(model_dir)
    fix = (
        f"restore {where} from its original copy (model.keras must match manifest.json's "
        "sha256), or point model.path at a good model directory"
    )
    try:
        manifest = Manifest.read(where)
        verify_weights(where, manifest)
        model = load_model_dir(model_dir, config.model.runtime, config.model.variant)
    except FacegateError as err:
        return _result("model", "fail", str(err), fix), None
    sha = model.manifest.sha256
    active = registry.active_model() if registry is not None else None
    if active is not None and active.sha256 != sha:
        return (
            _result(
                "model",
                "fail",
                f"{where} holds model {sha[:12]} but the registry's active model is "
                f"{active.sha256[:12]}",
                fix,
            ),
            None,
        )
    role = "active model" if active is not None else "configured model"
    detail = f"{model.manifest.name} ({model.manifest.arch}) sha256 {model.label}, {role}, {where}"
    return _result("model", "ok", detail), model


def check_galleries(registry: Registry, model: LoadedModel) -> CheckResult:
    """Every gallery image has an embedding by the model the daemon serves (on its runtime)."""
    sha = model.space
    users = registry.list_users(active_only=True)
    if not users:
        return _result(
            "galleries",
            "warn",
            "no active users enrolled: nobody can be granted",
            "enroll someone: facegate enroll NAME DIR",
        )
    missing = registry.images_without_embedding(sha)
    if missing:
        return _result(
            "galleries",
            "warn",
            f"{len(missing)} gallery images have no embedding by model {model.label}",
            "restart facegate (it embeds missing gallery images at start)",
        )
    legacy = [image for image in registry.all_gallery_images() if image.legacy]
    if legacy:
        return _result(
            "galleries",
            "warn",
            f"{len(legacy)} gallery images of {len({i.user_id for i in legacy})} users are legacy "
            "crops aligned for the model that enrolled them: a model with another crop size "
            "or template gets them resized, and matches those users worse",
            "re-enroll those users from photos: facegate gallery add NAME DIR, then "
            "facegate gallery remove NAME ID for each old image (facegate gallery list NAME)",
        )
    images = sum(user.image_count for user in users)
    return _result(
        "galleries", "ok", f"{len(users)} active users, {images} images embedded by {model.label}"
    )


def check_time(timedatectl: str = "timedatectl", timeout_s: float = 5.0) -> CheckResult:
    """Whether the system clock is NTP-synchronised, as systemd sees it."""
    exe = shutil.which(timedatectl)
    if exe is None:
        return time_verdict(None, "")
    try:
        done = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return time_verdict(124, f"timedatectl did not answer within {timeout_s:.0f} s")
    return time_verdict(done.returncode, done.stdout if done.returncode == 0 else done.stderr)


def check_disk(
    data_dir: Path, warn_bytes: int = DISK_WARN_BYTES, fail_bytes: int = DISK_FAIL_BYTES
) -> CheckResult:
    """Free space on the file system holding the data directory (or its nearest parent)."""
    path = Path(data_dir)
    while not path.exists() and path != path.parent:
        path = path.parent
    return disk_verdict(Path(data_dir), shutil.disk_usage(path).free, warn_bytes, fail_bytes)


def run_checks(
    config: FacegateConfig,
    config_path: Path | None = None,
    only: Sequence[str] = (),
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[CheckResult]:
    """Run the checks named in ``only`` (all of them when empty), in CHECK_NAMES order."""
    wanted = set(only or CHECK_NAMES)
    results: list[CheckResult] = []
    if "config" in wanted:
        results.append(check_config(config, config_path))
    if "camera" in wanted:
        camera_timeout = min(timeout_s, config.source.read_timeout_s + 5.0)
        results.append(bounded("camera", lambda: check_camera(config, camera_timeout), timeout_s))
    if "broker" in wanted:
        broker_timeout = max(1.0, timeout_s / 4)
        results.append(bounded("broker", lambda: check_broker(config, broker_timeout), timeout_s))
    registry: Registry | None = None
    model: LoadedModel | None = None
    needs_registry = wanted & {"registry", "model", "galleries"}
    try:
        if needs_registry:
            opened: list[Registry | None] = [None]

            def registry_check() -> CheckResult:
                result, opened[0] = open_registry_checked(config.storage)
                return result

            result = bounded("registry", registry_check, timeout_s)
            registry = opened[0]
            if "registry" in wanted:
                results.append(result)
        if wanted & {"model", "galleries"}:
            loaded: list[LoadedModel | None] = [None]

            def model_check() -> CheckResult:
                result, loaded[0] = load_model_checked(config, registry)
                return result

            result = bounded("model", model_check, max(timeout_s, MODEL_TIMEOUT_S))
            model = loaded[0]
            if "model" in wanted:
                results.append(result)
        if "galleries" in wanted:
            if registry is None or model is None:
                results.append(
                    _result("galleries", "skip", "needs a working registry and model (see above)")
                )
            else:
                reg, mod = registry, model
                results.append(bounded("galleries", lambda: check_galleries(reg, mod), timeout_s))
    finally:
        if registry is not None:
            registry.close()
    if "time" in wanted:
        results.append(bounded("time", lambda: check_time(timeout_s=timeout_s / 2), timeout_s))
    if "disk" in wanted:
        results.append(bounded("disk", lambda: check_disk(config.storage.data_dir), timeout_s))
    return results


def _now() -> str:
    return datetime.now(UTC).isoformat()
