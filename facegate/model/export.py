"""Export a model directory's embedding tower to LiteRT (``.tflite``), recorded in its manifest.

The tower goes through a Keras SavedModel and ``TFLiteConverter.from_saved_model``:
``from_concrete_functions`` silently drops Keras 3 weights (an empty model that outputs NaN).
The Siamese head is copied into the manifest entry so the LiteRT runtime needs no Keras file.
A flip-averaging tower is exported without its mirror branch and its unit-length scaling
(``flip_average`` and ``l2_normalize`` in the entry: the LiteRT embedder averages crop and
mirror and scales itself), so one file also serves the fast variant.
``model.keras`` and the manifest's ``sha256`` are left as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facegate.errors import ModelError
from facegate.model.bundle import LoadedModel, sha256_file
from facegate.model.manifest import MANIFEST_NAME, Manifest

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("none", "float16", "int8")
_CALIBRATION_MAX = 200


def tflite_name(quantize: str) -> str:
    """File name of the export for ``quantize`` inside a model directory."""
    return "tower.tflite" if quantize == "none" else f"tower-{quantize}.tflite"


def _representative(crops: np.ndarray, model: LoadedModel) -> Iterator[list[np.ndarray]]:
    """Preprocessed float32 crops, one at a time, for the converter's calibration."""
    pre = model.manifest.preprocessing
    offset = np.asarray(pre.offset, np.float32).reshape(1, 1, 1, 3)
    for crop in crops[:_CALIBRATION_MAX]:
        yield [crop[None].astype(np.float32) * np.float32(pre.scale) + offset]


def _convert(
    saved_model: Path, quantize: str, model: LoadedModel, calibration_crops: np.ndarray | None
) -> tuple[bytes, str]:
    """Convert a SavedModel; return the flatbuffer and the mode actually used."""
    from facegate.model.tf_runtime import import_tf

    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    mode = quantize
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration_crops is not None and len(calibration_crops):
            # Activations calibrated on aligned faces; float input/output kept so the
            # embedder's preprocessing and the head stay the same for every export.
            crops = np.asarray(calibration_crops)
            converter.representative_dataset = lambda: _representative(crops, model)
            mode = "int8-calibrated"
        else:
            mode = "int8-dynamic-range"
    return bytes(converter.convert()), mode


def export_tflite(
    model: LoadedModel,
    out: Path,
    quantize: Literal["none", "float16", "int8"] = "float16",
    calibration_crops: np.ndarray | None = None,
) -> Path:
    """Write the tower of ``model`` as ``.tflite`` into model dir ``out``; return its path.

    ``calibration_crops``: (N, S, S, 3) uint8 aligned faces for int8 activation ranges (without
    them int8 is dynamic-range: int8 weights, float activations). The manifest in ``out`` gets
    a ``tflite[quantize]`` entry with the file, its sha256 and the head's kernel and bias.
    """
    from facegate.model.siamese import CLASSIFIER_LAYER, embedding_tower

    if quantize not in QUANTIZATIONS:
        raise ModelError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    if model.siamese is None:
        raise ModelError("export needs the model loaded with runtime tensorflow")
    out = Path(out)
    manifest = Manifest.read(out)
    if manifest.sha256 != model.manifest.sha256:
        raise ModelError(f"{out}: not the directory of the loaded model (sha256 differs)")
    from facegate.model.resnet import base_tower, normalizes

    full = embedding_tower(model.siamese)
    tower = base_tower(full)
    kernel, bias = model.siamese.get_layer(CLASSIFIER_LAYER).get_weights()
    tmp = Path(tempfile.mkdtemp(prefix=".export.", dir=out))
    try:
        saved = tmp / "saved_model"
        tower.export(str(saved), format="tf_saved_model", verbose=False)
        flatbuffer, mode = _convert(saved, quantize, model, calibration_crops)
        if len(flatbuffer) < 1024:
            raise ModelError(f"{out}: the converter produced an empty model")
        target = out / tflite_name(quantize)
        part = tmp / target.name
        part.write_bytes(flatbuffer)
        os.replace(part, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entry: dict[str, Any] = {
        "file": target.name,
        "sha256": sha256_file(target),
        "mode": mode,
        "flip_average": tower is not full,
        "l2_normalize": normalizes(full),
        "head_kernel": [float(v) for v in np.asarray(kernel, np.float32).reshape(-1)],
        "head_bias": float(np.asarray(bias, np.float32).reshape(-1)[0]),
    }
    exports = {**(manifest.tflite or {}), quantize: entry}
    updated = dataclasses.replace(manifest, tflite=exports)
    part = out / f".{MANIFEST_NAME}.part"
    part.write_text(updated.to_json(), encoding="utf-8")
    os.replace(part, out / MANIFEST_NAME)
    logger.info("exported %s (%s, %d bytes) to %s", manifest.name, mode, len(flatbuffer), target)
    return target


def export_like(
    model: LoadedModel, out: Path, like: Manifest, calibration_crops: np.ndarray | None
) -> list[Path]:
    """Export ``model`` into its directory ``out`` with every quantization ``like`` has.

    A retrained candidate gets the exports of the model it was trained from, so a LiteRT site
    can serve it: int8 is calibrated on ``calibration_crops`` ((N, S, S, 3) uint8 aligned
    faces) unless ``like``'s int8 was dynamic-range. Returns the written paths.
    """
    written = []
    for quantize, entry in sorted((like.tflite or {}).items()):
        if quantize not in QUANTIZATIONS:
            logger.warning("%s: unknown export %r not repeated", out, quantize)
            continue
        dynamic = entry.get("mode") == "int8-dynamic-range"
        crops = calibration_crops if quantize == "int8" and not dynamic else None
        written.append(export_tflite(model, out, quantize, crops))  # type: ignore[arg-type]
    return written
