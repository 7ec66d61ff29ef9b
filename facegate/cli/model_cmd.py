"""``facegate model info`` and ``model export``: inspect a model, export it to LiteRT."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``model info`` and ``model export``."""
    model = subparsers.add_parser("model", help="inspect verification models")
    commands = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    info = commands.add_parser(
        "info", help="architecture, parameter counts and hash of a model or architecture"
    )
    source = info.add_mutually_exclusive_group()
    source.add_argument(
        "--model", type=Path, default=None, help="model directory (default: the configured one)"
    )
    source.add_argument(
        "--arch", default=None, metavar="ARCH", help="an untrained architecture: seed, compact"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=run_info)
    export = commands.add_parser(
        "export", help="export the embedding tower to LiteRT (.tflite) into a model directory"
    )
    export.add_argument(
        "--model", type=Path, default=None, help="model directory (default: the configured one)"
    )
    export.add_argument("--format", choices=("tflite",), required=True, help="export format")
    export.add_argument(
        "--quantize",
        choices=("none", "float16", "int8"),
        default="float16",
        help="weights: float16 (default), int8, none (float32)",
    )
    export.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        metavar="DIR",
        help="int8: calibrate activations on the faces in these images (else dynamic range)",
    )
    export.add_argument(
        "--out",
        type=Path,
        default=None,
        help="copy the model directory here and export into the copy (needed for the default)",
    )
    export.set_defaults(handler=run_export)


def _count(model: Any) -> int:
    return int(sum(int(w.numpy().size) for w in model.weights))


def _describe(siamese: Any, arch: str) -> dict[str, Any]:
    """The keys shared by a model directory and an architecture."""
    from facegate.model.siamese import embedding_tower

    tower = embedding_tower(siamese)
    return {
        "arch": arch,
        "params": _count(siamese),
        "embedding_params": _count(tower),
        "input_shape": [int(d) for d in tower.input_shape[1:]],
        "embedding_dim": int(tower.output_shape[-1]),
    }


def model_info(
    model_dir: Path | None = None,
    arch: str | None = None,
    runtime: str = "tensorflow",
    variant: str = "full",
) -> dict[str, Any]:
    """The ``model info`` JSON object for ``arch`` (untrained) or a model dir (None: default),
    loaded on ``runtime`` serving ``variant`` (parameter counts need TensorFlow: None on
    LiteRT)."""
    if arch is not None:
        from facegate.model.architectures import get_architecture
        from facegate.model.tf_runtime import require_tensorflow

        require_tensorflow("model info --arch")
        info = _describe(get_architecture(arch).build_siamese(), arch)
        return {**info, "sha256": None}
    from facegate.model.bundle import load_model_dir

    loaded = load_model_dir(model_dir, runtime, variant)
    manifest = loaded.manifest
    if loaded.siamese is not None:
        described = _describe(loaded.siamese, manifest.arch)
    else:
        size = manifest.input_size
        described = {
            "arch": manifest.arch,
            "params": None,
            "embedding_params": None,
            "input_shape": [size, size, 3],
            "embedding_dim": manifest.embedding_dim,
        }
    weights = loaded.path / manifest.weights_file
    exports = manifest.tflite or {}
    return {
        **described,
        "sha256": manifest.sha256,
        "name": manifest.name,
        "path": str(loaded.path),
        "runtime": loaded.runtime,
        "variant": loaded.variant,
        "variants": ["full", *sorted(manifest.variants)],
        # The key gallery embeddings are stored under on this runtime (LoadedModel.space).
        "embedding_space": loaded.space,
        "tflite": {q: e["file"] for q, e in sorted(exports.items())},
        "thresholds": {
            "detection": manifest.thresholds.detection,
            "verification": manifest.thresholds.verification,
            "pair": manifest.thresholds.one_to_one,
        },
        "size_bytes": weights.stat().st_size if weights.is_file() else None,
        # Every weights file the directory ships (Keras and LiteRT), as a package budget counts.
        "total_bytes": sum(
            (loaded.path / name).stat().st_size
            for name in {manifest.weights_file, *(e["file"] for e in exports.values())}
            if (loaded.path / name).is_file()
        ),
        "metrics": manifest.metrics,
    }


def run_info(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print the model's description, as JSON or as aligned lines."""
    model_dir = args.model if args.model is not None else config.model.path
    info = model_info(
        model_dir if args.arch is None else None,
        args.arch,
        config.model.runtime,
        config.model.variant,
    )
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    keys = (
        "name",
        "arch",
        "path",
        "runtime",
        "variant",
        "params",
        "embedding_params",
        "input_shape",
    )
    for key in keys:
        if key in info:
            print(f"{key:17} {'-' if info[key] is None else info[key]}")
    print(f"{'embedding_dim':17} {info['embedding_dim']}")
    if "thresholds" in info:
        thr = info["thresholds"]
        print(f"{'thresholds':17} detection {thr['detection']}, verification {thr['verification']}")
        print(f"{'size_bytes':17} {info['size_bytes']} ({info['total_bytes']} with exports)")
        exports = ", ".join(f"{q} ({f})" for q, f in info["tflite"].items())
        print(f"{'tflite':17} {exports or '- (none: facegate model export --format tflite)'}")
    print(f"{'sha256':17} {info['sha256'] or '- (untrained architecture)'}")
    return 0


CALIBRATION_IMAGES = 200
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def calibration_crops(folder: Path, spec: Any, config: FacegateConfig) -> Any:
    """Aligned (N, S, S, 3) uint8 faces from up to 200 images under ``folder``, for int8."""
    import numpy as np

    from facegate.errors import DataError, FacegateError
    from facegate.face.image_io import load_image
    from facegate.face.pipeline import FacePipeline, box_area

    pipeline = FacePipeline(config.face, spec)
    images = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    crops = []
    for image in images:
        # Detect and align only: the quality gates are for access decisions, and activation
        # ranges are better calibrated on the blurred and dark faces a camera also delivers.
        try:
            rgb = load_image(image)
        except FacegateError as err:
            logger.warning("%s: skipped for calibration: %s", image, err)
            continue
        detections = pipeline.detect(rgb)
        if detections:
            crops.append(pipeline.align(rgb, max(detections, key=box_area)).crop)
        if len(crops) >= CALIBRATION_IMAGES:
            break
    if not crops:
        raise DataError(f"{folder}: no usable face to calibrate on")
    logger.info("calibrating int8 on %d faces from %s", len(crops), folder)
    return np.stack(crops)


def run_export(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Export the model's tower to ``.tflite`` into its directory (or a copy); print the path."""
    import shutil

    from facegate.errors import ModelError
    from facegate.model.bundle import DEFAULT_MODEL_DIR, load_model_dir, resolve_model_dir
    from facegate.model.export import export_tflite
    from facegate.model.tf_runtime import require_tensorflow

    require_tensorflow("model export")
    source = resolve_model_dir(args.model if args.model is not None else config.model.path)
    if args.out is None and source.resolve() == DEFAULT_MODEL_DIR.resolve():
        raise ModelError("refusing to modify the packaged default model: pass --out DIR")
    target = source
    if args.out is not None:
        if args.out.exists():
            raise ModelError(f"{args.out} already exists; pass a new directory to --out")
        shutil.copytree(source, args.out)
        target = args.out
    model = load_model_dir(target)
    crops = None
    if args.calibrate is not None:
        if args.quantize != "int8":
            raise ModelError("--calibrate goes with --quantize int8")
        crops = calibration_crops(args.calibrate, model.manifest.align_spec, config)
    path = export_tflite(model, target, args.quantize, crops)
    print(path)
    return 0
