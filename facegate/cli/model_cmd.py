"""``facegate model info``: what a model directory or an untrained architecture is made of."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``model info``."""
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


def model_info(model_dir: Path | None = None, arch: str | None = None) -> dict[str, Any]:
    """The ``model info`` JSON object for ``arch`` (untrained) or a model dir (None: default)."""
    if arch is not None:
        from facegate.model.architectures import get_architecture

        info = _describe(get_architecture(arch).build_siamese(), arch)
        return {**info, "sha256": None}
    from facegate.model.bundle import load_model_dir

    loaded = load_model_dir(model_dir)
    manifest = loaded.manifest
    weights = loaded.path / manifest.weights_file
    return {
        **_describe(loaded.siamese, manifest.arch),
        "sha256": manifest.sha256,
        "name": manifest.name,
        "path": str(loaded.path),
        "thresholds": {
            "detection": manifest.thresholds.detection,
            "verification": manifest.thresholds.verification,
        },
        "size_bytes": weights.stat().st_size,
        "metrics": manifest.metrics,
    }


def run_info(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print the model's description, as JSON or as aligned lines."""
    model_dir = args.model if args.model is not None else config.model.path
    info = model_info(model_dir if args.arch is None else None, args.arch)
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    for key in ("name", "arch", "path", "params", "embedding_params", "input_shape"):
        if key in info:
            print(f"{key:17} {info[key]}")
    print(f"{'embedding_dim':17} {info['embedding_dim']}")
    if "thresholds" in info:
        thr = info["thresholds"]
        print(f"{'thresholds':17} detection {thr['detection']}, verification {thr['verification']}")
        print(f"{'size_bytes':17} {info['size_bytes']}")
    print(f"{'sha256':17} {info['sha256'] or '- (untrained architecture)'}")
    return 0
