"""The JSON manifest that sits beside every model's weights (no TensorFlow here).

A model directory holds ``manifest.json`` and the weights file it names. The manifest says how
to feed the model (crop size, landmark template, pixel preprocessing), how to read its scores
(thresholds), where it came from (training data, exclusions, source licence) and how good it is
(evaluation metrics), plus the sha256 of the weights that loading checks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facegate.errors import ModelError
from facegate.face.types import AlignSpec

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
# The manifest's own head and thresholds; any other variant name is a key of ``variants``.
FULL = "full"
FAST = "fast"
VARIANTS = (FULL, FAST)


@dataclass(frozen=True)
class Preprocessing:
    """Pixel transform applied to uint8 RGB crops: ``x * scale + offset[channel]`` (float32)."""

    scale: float = 1.0 / 255.0
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Thresholds:
    """The seed's two thresholds, and the one of a lone 1:1 comparison.

    All compare the Siamese score (probability in [0, 1], higher is more similar).
    ``detection``: at the door, a comparison of the probe with one gallery image matches when
    its score is at least this. ``verification``: a user is verified when the share of their
    gallery images that match is at least this. ``pair``: two images are the same person
    (``facegate verify``, LFW-style evaluation) when their score is at least this; a door asks
    more of each comparison (deny on doubt) because it compares one probe with every gallery.
    None where the model was calibrated for one threshold only: then ``detection`` serves.
    """

    detection: float = 0.5
    verification: float = 0.5
    pair: float | None = None

    @property
    def one_to_one(self) -> float:
        """The threshold of a single 1:1 comparison: ``pair``, else ``detection``."""
        return self.detection if self.pair is None else self.pair


@dataclass(frozen=True)
class Variant:
    """Another way to run the same tower, with its own Siamese head, thresholds and metrics.

    The one variant there is, ``fast``, runs a flip-averaging model's tower on the crop alone
    (half the compute); its head is trained and its thresholds calibrated on those plain
    embeddings, as the full model's are on the mirror-averaged ones.
    """

    flip_average: bool
    head_kernel: tuple[float, ...]
    head_bias: float
    thresholds: Thresholds = field(default_factory=Thresholds)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """Everything facegate needs to know about a model besides its weights."""

    name: str
    arch: str
    input_size: int
    embedding_dim: int
    template: tuple[tuple[float, float], ...]
    weights_file: str
    sha256: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Free-form provenance: datasets, excluded identities rule and checksum, epochs, licence.
    training: dict[str, Any] = field(default_factory=dict)
    # Evaluation results keyed by benchmark name, e.g. "lfw_devtest": {"accuracy": ...}.
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # LiteRT exports keyed by quantization ("none", "float16", "int8"): each entry has "file",
    # "sha256" and the Siamese head ("head_kernel", "head_bias") so LiteRT needs no Keras file.
    tflite: dict[str, dict[str, Any]] | None = None
    # Named variants of this model (``FULL`` is the manifest itself), e.g. "fast".
    variants: dict[str, Variant] = field(default_factory=dict)

    @property
    def align_spec(self) -> AlignSpec:
        """The crop the face pipeline must produce for this model."""
        return AlignSpec(size=self.input_size, template=self.template)

    def to_json(self) -> str:
        """Serialise to pretty JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Build from parsed JSON; raise ModelError on missing or malformed fields."""
        try:
            version = int(data.get("format_version", FORMAT_VERSION))
            if version > FORMAT_VERSION:
                raise ModelError(
                    f"manifest format {version} is newer than this facegate ({FORMAT_VERSION})"
                )
            pre = data.get("preprocessing", {})
            return cls(
                name=str(data["name"]),
                arch=str(data["arch"]),
                input_size=int(data["input_size"]),
                embedding_dim=int(data["embedding_dim"]),
                template=tuple((float(x), float(y)) for x, y in data["template"]),
                weights_file=str(data["weights_file"]),
                sha256=str(data["sha256"]),
                preprocessing=Preprocessing(
                    scale=float(pre.get("scale", 1.0 / 255.0)),
                    offset=tuple(float(v) for v in pre.get("offset", (0.0, 0.0, 0.0))),
                ),
                thresholds=_parse_thresholds(data.get("thresholds", {})),
                training=dict(data.get("training", {})),
                metrics=dict(data.get("metrics", {})),
                format_version=version,
                tflite=_parse_tflite(data.get("tflite")),
                variants={
                    str(name): _parse_variant(entry)
                    for name, entry in dict(data.get("variants") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"malformed model manifest: {err!r}") from err

    @classmethod
    def read(cls, model_dir: Path) -> Manifest:
        """Read ``manifest.json`` from a model directory."""
        path = Path(model_dir) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ModelError(f"{model_dir}: not a model directory (no {MANIFEST_NAME})") from err
        except (OSError, ValueError) as err:
            raise ModelError(f"{path}: unreadable manifest: {err}") from err
        if not isinstance(data, dict):
            raise ModelError(f"{path}: manifest is not a JSON object")
        return cls.from_dict(data)


def _parse_thresholds(thr: dict[str, Any]) -> Thresholds:
    return Thresholds(
        detection=float(thr.get("detection", 0.5)),
        verification=float(thr.get("verification", 0.5)),
        pair=None if thr.get("pair") is None else float(thr["pair"]),
    )


def _parse_variant(entry: dict[str, Any]) -> Variant:
    return Variant(
        flip_average=bool(entry["flip_average"]),
        head_kernel=tuple(float(v) for v in entry["head_kernel"]),
        head_bias=float(entry["head_bias"]),
        thresholds=_parse_thresholds(entry.get("thresholds", {})),
        training=dict(entry.get("training", {})),
        metrics=dict(entry.get("metrics", {})),
    )


def _parse_tflite(value: Any) -> dict[str, dict[str, Any]] | None:
    """The manifest's ``tflite`` field: None, or quantization -> entry with file and sha256."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelError("malformed model manifest: tflite must be an object")
    entries: dict[str, dict[str, Any]] = {}
    for quantization, entry in value.items():
        if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
            raise ModelError(f"malformed model manifest: tflite.{quantization} needs file, sha256")
        entries[str(quantization)] = dict(entry)
    return entries
