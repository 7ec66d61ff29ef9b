"""``facegate live``: watch the camera and the decisions the daemon would take."""

from __future__ import annotations

import argparse

from facegate.config import FacegateConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``live`` command."""
    parser = subparsers.add_parser(
        "live",
        help="show the camera with faces and decisions (for installing a door)",
        description="A window with the live feed, the face box and landmarks, the quality "
        "verdict and the decision for every burst. v verifies now, q quits.",
    )
    parser.add_argument("--camera", type=int, default=None, help="camera index (default: config)")
    parser.set_defaults(handler=_live)


def _live(args: argparse.Namespace, config: FacegateConfig) -> int:
    from facegate.daemon.live import has_display
    from facegate.errors import CaptureError

    if not has_display():
        raise CaptureError(
            "no display (DISPLAY/WAYLAND_DISPLAY unset): facegate live needs a screen"
        )
    if args.camera is not None:
        source = config.source.model_copy(update={"kind": "camera", "camera": args.camera})
        config = config.model_copy(update={"source": source})

    from facegate.daemon.app import build_verifier
    from facegate.daemon.live import run_live
    from facegate.storage.registry import open_registry

    registry = open_registry(config.storage)
    try:
        verifier = build_verifier(registry, config)
    finally:
        registry.close()
    return run_live(config, verifier)
