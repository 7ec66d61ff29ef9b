"""``facegate verify IMAGE_A IMAGE_B``: are these two faces the same person?"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from facegate.config import FacegateConfig
from facegate.errors import DataError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``verify``."""
    verify = subparsers.add_parser(
        "verify", help="score two face images with the Siamese model (1 = same person)"
    )
    verify.add_argument("image_a", type=Path, metavar="IMAGE_A")
    verify.add_argument("image_b", type=Path, metavar="IMAGE_B")
    verify.add_argument(
        "--model", type=Path, default=None, help="model directory (default: the configured one)"
    )
    verify.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="match when the score is at least this (default: the model's 1:1 threshold)",
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.set_defaults(handler=run_verify)


def verify_images(
    image_a: Path,
    image_b: Path,
    config: FacegateConfig,
    model_dir: Path | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Detect, align and score two images: the ``verify`` JSON object.

    ``threshold`` defaults to the model's 1:1 threshold (``Thresholds.one_to_one``), not the
    door's stricter per-comparison ``detection`` threshold.

    ``score`` is the Siamese probability in [0, 1] (higher = more similar), None when an image
    has no usable face; ``reason_a`` / ``reason_b`` name why (None when that face was usable).
    """
    for path in (image_a, image_b):
        if not Path(path).is_file():
            raise DataError(f"{path}: no such image file")
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import load_model_dir

    model = load_model_dir(
        model_dir or config.model.path, config.model.runtime, config.model.variant
    )
    if threshold is None:
        threshold = model.manifest.thresholds.one_to_one
    pipeline = FacePipeline(config.face, model.manifest.align_spec)
    results = [pipeline.process_file(path) for path in (image_a, image_b)]
    reasons = [None if r.ok else (r.reason.value if r.reason else "no_face") for r in results]
    out: dict[str, Any] = {"score": None, "match": False, "threshold": threshold}
    if all(r.face is not None for r in results):
        score = model.score(results[0].face.crop, results[1].face.crop)
        out.update(score=score, match=bool(score >= threshold))
    else:
        out.update(reason_a=reasons[0], reason_b=reasons[1])
    return out


def run_verify(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print the score and decision; exit 1 with one line when an image has no usable face."""
    result = verify_images(args.image_a, args.image_b, config, args.model, args.threshold)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    if result["score"] is None:
        bad = [
            f"{path}: {result[key]}"
            for path, key in ((args.image_a, "reason_a"), (args.image_b, "reason_b"))
            if result[key]
        ]
        print(f"facegate: error: no usable face: {'; '.join(bad)}", file=sys.stderr)
        return 1
    if not args.json:
        verdict = "MATCH" if result["match"] else "no match"
        print(f"{verdict}: score {result['score']:.4f} (threshold {result['threshold']:.4f})")
    return 0
