"""The one typed configuration tree, loaded once by the entry point and passed down.

No other module reads files or environment variables to configure itself: what a component
needs is a field here. Unknown keys are errors, so a typo fails loudly with the key's path.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from facegate.errors import ConfigError


class StrictModel(BaseModel):
    """A config section: frozen, and unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def default_data_dir() -> Path:
    """Where state lives when the config does not say: systemd's StateDirectory, else XDG."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "facegate"


class StorageConfig(StrictModel):
    """Where the registry and the gallery crops live."""

    data_dir: Path = Field(default_factory=default_data_dir)
    # Any SQLAlchemy URL; empty means a SQLite file ``registry.db`` in data_dir.
    url: str = ""
    busy_timeout_s: float = Field(default=5.0, gt=0)

    @property
    def resolved_url(self) -> str:
        """The SQLAlchemy URL actually used."""
        return self.url or f"sqlite:///{self.data_dir / 'registry.db'}"


class FaceConfig(StrictModel):
    """Detection and quality-gate settings of the face pipeline."""

    detector: Literal["short_range", "full_range"] = "full_range"
    min_detection_score: float = Field(default=0.6, ge=0, le=1)
    # Also detect on square tiles of wide frames (2-3x the detection time): a face 100 px wide
    # in a 1920x1080 frame is found 85% of the time instead of 11%.
    tiled_detection: bool = True
    # "largest" keeps the biggest face when several are seen; "reject" refuses the frame.
    multiple_faces: Literal["largest", "reject"] = "largest"
    min_eye_distance_px: float = Field(default=20.0, gt=0)
    # Variance of the Laplacian of the aligned crop (measured at 100x100), below which it is
    # "too blurred"; brightness is the mean luma 0-255 of the crop's centre. Calibrated on 600
    # LFW faces: 99.8% pass; Gaussian blur sigma 3, x0.2 dark and washed-out versions fail.
    min_sharpness: float = Field(default=35.0, ge=0)
    min_brightness: float = Field(default=45.0, ge=0, le=255)
    max_brightness: float = Field(default=210.0, ge=0, le=255)
    # Largest image side accepted before decoding (decompression-bomb guard), in pixels.
    max_image_side: int = Field(default=16384, gt=0)

    @model_validator(mode="after")
    def _brightness_range(self) -> FaceConfig:
        if self.min_brightness >= self.max_brightness:
            raise ValueError("min_brightness must be below max_brightness")
        return self


class ModelConfig(StrictModel):
    """Which verification model runs, on which runtime, with which thresholds."""

    # A model directory; empty means the model shipped in the package.
    path: Path | None = None
    # auto: LiteRT when the model directory has a .tflite export (as accurate for the packaged
    # model, faster, a fraction of the memory), else TensorFlow. Gallery embeddings are stored
    # per runtime's embedding space, so switching runtime re-embeds instead of mixing.
    runtime: Literal["auto", "tensorflow", "litert"] = "auto"
    # full: the model as calibrated. fast: the packaged model's tower without flip averaging,
    # half the compute per face, with its own head and thresholds (see docs/model_card.md).
    variant: Literal["full", "fast"] = "full"
    # Overrides of the manifest's calibrated thresholds; None keeps the manifest's.
    detection_threshold: float | None = Field(default=None, gt=0, lt=1)
    verification_threshold: float | None = Field(default=None, gt=0, le=1)


class EnrollmentConfig(StrictModel):
    """Rules for building a user's gallery."""

    min_images: int = Field(default=3, ge=1)
    max_gallery: int = Field(default=50, ge=1)
    # Two crops whose embeddings are closer than this cosine similarity are duplicates.
    duplicate_similarity: float = Field(default=0.985, gt=0, le=1)
    # Warn when a new gallery scores this close to an existing user's (a look-alike or duplicate).
    lookalike_score: float = Field(default=0.5, gt=0, lt=1)


class MqttConfig(StrictModel):
    """The broker connection and topic layout."""

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = ""
    # Prefer password_env or the systemd credential ``mqtt_password`` over a password here.
    password: SecretStr = SecretStr("")
    password_env: str = ""
    client_id: str = ""
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    base_topic: str = Field(default="facegate", pattern=r"^[^#+\s]+$")
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[^#+\s]+$")
    discovery: bool = True
    # Payloads above this size are dropped unread (a snapshot JPEG is well under 2 MB).
    max_payload_bytes: int = Field(default=4_000_000, gt=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)


class SourceConfig(StrictModel):
    """Where frames come from: a camera index, a video URL or file, a folder of images, or
    ``none`` (no camera: only images published on the image topic are verified)."""

    kind: Literal["camera", "url", "folder", "none"] = "camera"
    camera: int = Field(default=0, ge=0)
    # A stream URL may carry credentials (rtsp://user:pass@host/...): kept out of reprs.
    url: SecretStr = SecretStr("")
    folder: Path | None = None
    # A folder source loops over its images, for replay and tests.
    loop: bool = True
    fps: float = Field(default=10.0, gt=0, le=120)
    width: int = Field(default=640, gt=0)
    height: int = Field(default=480, gt=0)
    # A read that takes longer than this is abandoned and the source reopened.
    read_timeout_s: float = Field(default=5.0, gt=0)
    reopen_min_s: float = Field(default=1.0, gt=0)
    reopen_max_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _source_named(self) -> SourceConfig:
        if self.kind == "url" and not self.url.get_secret_value():
            raise ValueError("kind = 'url' needs url")
        if self.kind == "folder" and self.folder is None:
            raise ValueError("kind = 'folder' needs folder")
        return self


class MotionConfig(StrictModel):
    """The cheap motion gate that decides when to look for faces."""

    enabled: bool = True
    # Frames are downscaled to this width before differencing.
    width: int = Field(default=160, ge=32)
    # Per-pixel grey-level change that counts as motion.
    pixel_threshold: int = Field(default=25, ge=1, le=255)
    # Share of the downscaled frame that must change.
    min_area: float = Field(default=0.01, gt=0, le=1)
    # Background running-average weight per frame.
    alpha: float = Field(default=0.05, gt=0, le=1)
    cooldown_s: float = Field(default=3.0, ge=0)


class DecisionConfig(StrictModel):
    """How a burst of frames becomes a decision."""

    burst_frames: int = Field(default=5, ge=1, le=50)
    burst_seconds: float = Field(default=3.0, gt=0)
    # Frames that must verify the same user before a grant (capped at the burst's frames).
    agreement: int = Field(default=2, ge=1)
    # Score units: the best user must beat the threshold and the runner-up by this much.
    margin: float = Field(default=0.02, ge=0, lt=1)
    # Seconds during which a granted user does not re-open the door.
    grant_cooldown_s: float = Field(default=10.0, ge=0)
    trigger_queue: int = Field(default=8, ge=1, le=1000)
    # Reject bursts whose frames are identical or whose landmarks never move (photo replay).
    liveness: bool = True
    # IANA time zone for schedules; empty means the system's local time.
    timezone: str = ""


class LockoutConfig(StrictModel):
    """N denied attempts within M minutes suspend verification for L minutes."""

    enabled: bool = True
    max_failures: int = Field(default=5, ge=1)
    window_minutes: float = Field(default=2.0, gt=0)
    duration_minutes: float = Field(default=5.0, gt=0)


class ActuatorConfig(StrictModel):
    """What opens the door: an MQTT command, a program (relay), or nothing."""

    kind: Literal["none", "mqtt", "command"] = "none"
    # mqtt: published (never retained) to this topic.
    topic: str = ""
    payload: str = "UNLOCK"
    # command: argv run for each opening, e.g. ["gpioset", "gpiochip0", "17=1"].
    command: list[str] = Field(default_factory=list)
    pulse_s: float = Field(default=3.0, ge=0, le=60)
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _target_named(self) -> ActuatorConfig:
        if self.kind == "mqtt" and not self.topic:
            raise ValueError("kind = 'mqtt' needs topic")
        if self.kind == "command" and not self.command:
            raise ValueError("kind = 'command' needs command")
        return self


class CaptureConfig(StrictModel):
    """Keeping the frames decisions were made on (biometric data: off unless enabled)."""

    enabled: bool = False
    # Publish the last capture on the image topic (never retained) and enable the HA entity.
    publish: bool = False
    retention_days: float = Field(default=7.0, gt=0)
    access_log_retention_days: float = Field(default=365.0, gt=0)


class HeartbeatConfig(StrictModel):
    """The periodic state message with counters."""

    interval_s: float = Field(default=60.0, ge=1)


class LoggingConfig(StrictModel):
    """Log verbosity."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SchedulerConfig(StrictModel):
    """The daemon's maintenance jobs: when each runs, and the budget and rules of a retrain.

    A schedule is "off", an interval ("90s", "30m", "6h", "1d") or a five-field cron line
    ("15 3 * * *"), in decision.timezone.
    """

    enabled: bool = True
    gallery_refresh: str = "15 3 * * *"
    # Off by default: a retrain spends CPU hours on the door controller and needs LFW
    # negatives; it never makes the door worse (a candidate is promoted only when it is not
    # worse on the site's held-out pairs nor on LFW DevTest), but the operator opts in.
    retrain: str = "off"
    calibration: str = "45 3 * * *"
    retention: str = "1h"
    # A run missed by up to this many seconds (daemon busy or down) still runs, once.
    misfire_grace_s: float = Field(default=3600.0, gt=0)
    # How often the daemon checks whether the CLI changed the active model.
    model_watch_s: float = Field(default=60.0, gt=0)
    # Add recent high-confidence granted captures to the galleries of consenting users.
    gallery_self_update: bool = False
    # A capture qualifies only with a score at least this far above the detection threshold.
    self_update_margin: float = Field(default=0.05, gt=0, lt=1)
    self_update_days: float = Field(default=7.0, gt=0)
    retrain_time_limit_s: float = Field(default=3600.0, gt=0)
    retrain_memory_mb: int = Field(default=4096, ge=512)
    # CPU threads of the training process (the door keeps the rest), run at lower priority.
    retrain_threads: int = Field(default=1, ge=1)
    retrain_epochs: int = Field(default=3, ge=1)
    retrain_learning_rate: float = Field(default=1e-4, gt=0, lt=1)
    # False: fine-tune the Siamese head only; True: the embedding tower too.
    retrain_tower: bool = False
    # Share of each user's gallery held out for evaluating old against new.
    retrain_holdout: float = Field(default=0.3, gt=0, lt=1)
    # LFW faces (people outside pairsDevTest) used as impostors in training.
    retrain_negatives: int = Field(default=200, ge=0)
    # DevTest pairs evaluated (of 1000), genuine and impostor alike.
    retrain_lfw_pairs: int = Field(default=1000, ge=0, le=1000)
    # The LFW folder (lfw-deepfunneled/ and protocol/); unset: site data only.
    lfw_dir: Path | None = None
    # A false accept costs this many false rejects when old and new are compared.
    far_weight: float = Field(default=10.0, ge=1)

    @model_validator(mode="after")
    def _schedules_valid(self) -> SchedulerConfig:
        for name in ("gallery_refresh", "retrain", "calibration", "retention"):
            problem = schedule_problem(getattr(self, name))
            if problem:
                raise ValueError(f"{name}: {problem}")
        return self


_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def interval_seconds(text: str) -> float | None:
    """Seconds of an interval schedule ("90s", "30m", "6h", "1d"), None for other text."""
    match = _INTERVAL.match(text.strip())
    return float(match.group(1)) * _UNIT_S[match.group(2)] if match else None


def schedule_problem(text: str) -> str | None:
    """Why a job schedule is invalid, or None: "off", an interval, or five cron fields."""
    text = text.strip()
    if text == "off":
        return None
    seconds = interval_seconds(text)
    if seconds is not None:
        return None if seconds > 0 else "an interval must be positive"
    if len(text.split()) != 5:
        return 'expected "off", an interval like "6h", or five cron fields like "15 3 * * *"'
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text)
    except ValueError as err:
        return f"bad cron line: {err}"
    return None


class FacegateConfig(StrictModel):
    """The whole configuration of one facegate installation (one door controller)."""

    door: str = Field(default="front_door", pattern=r"^[a-z0-9_]{1,64}$")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    face: FaceConfig = Field(default_factory=FaceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    enrollment: EnrollmentConfig = Field(default_factory=EnrollmentConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    source: SourceConfig = Field(default_factory=SourceConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    lockout: LockoutConfig = Field(default_factory=LockoutConfig)
    actuator: ActuatorConfig = Field(default_factory=ActuatorConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    heartbeat: HeartbeatConfig = Field(default_factory=HeartbeatConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {key}: {first['msg']}{more}"


def parse_config(data: dict, source: str = "config") -> FacegateConfig:
    """Validate a mapping into a FacegateConfig; raise ConfigError naming the first bad key."""
    try:
        return FacegateConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from err


def load_config(path: Path | None) -> FacegateConfig:
    """Load and validate a TOML file, or the defaults when ``path`` is None."""
    if path is None:
        return FacegateConfig()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return parse_config(data, str(path))


def mqtt_password(config: MqttConfig) -> str:
    """The broker password: systemd credential ``mqtt_password``, then ``password_env``, then
    the file's ``password``. Never logged."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / "mqtt_password"
        if cred.is_file():
            return cred.read_text(encoding="utf-8").strip()
    if config.password_env:
        value = os.environ.get(config.password_env)
        if value is None:
            raise ConfigError(
                f"mqtt.password_env: environment variable {config.password_env} is not set"
            )
        return value
    return config.password.get_secret_value()
