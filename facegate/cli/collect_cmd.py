"""``facegate collect``: save anchor and positive face crops from a webcam (the seed's way)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``collect``."""
    p = subparsers.add_parser(
        "collect",
        help="webcam preview: a saves an anchor, p a positive, q quits (aligned face crops)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="data folder: crops go to DIR/anchor and DIR/positive",
    )
    p.add_argument("--camera", type=int, default=0, metavar="N", help="camera index (default 0)")
    p.set_defaults(handler=run_collect)


def run_collect(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Run the collection loop and print how many crops were saved."""
    from facegate.cli.live_cmd import require_gui
    from facegate.training.collect import collect, has_display

    if has_display():  # without one, collect says so itself
        require_gui("facegate collect")
    counts = collect(args.out, args.camera, config.face)
    print(f"saved {counts['anchor']} anchor and {counts['positive']} positive crops in {args.out}")
    return 0
