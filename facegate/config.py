"""The one typed configuration tree, loaded once by the entry point and passed down.

No other module reads files or environment variables to configure itself: what a component
needs is a field here. Unknown keys are errors, so a typo fails loudly with the key's path.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    # "largest" keeps the biggest face when several are seen; "reject" refuses the frame.
    multiple_faces: Literal["largest", "reject"] = "largest"
    min_eye_distance_px: float = Field(default=20.0, gt=0)
    # Variance of the Laplacian of the aligned crop, below which it is "too blurred".
    min_sharpness: float = Field(default=25.0, ge=0)
    min_brightness: float = Field(default=40.0, ge=0, le=255)
    max_brightness: float = Field(default=220.0, ge=0, le=255)
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
    runtime: Literal["tensorflow", "litert"] = "tensorflow"
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


class LoggingConfig(StrictModel):
    """Log verbosity."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class FacegateConfig(StrictModel):
    """The whole configuration of one facegate installation (one door controller)."""

    door: str = Field(default="front_door", pattern=r"^[a-z0-9_]{1,64}$")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    face: FaceConfig = Field(default_factory=FaceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    enrollment: EnrollmentConfig = Field(default_factory=EnrollmentConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


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
