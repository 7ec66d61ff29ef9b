"""``facegate live``: watch the camera and the decisions the daemon would take."""

from __future__ import annotations

import argparse
import re

from facegate.cli.tables import opened_registry
from facegate.config import FacegateConfig
from facegate.errors import CaptureError

# The core install has OpenCV without a GUI (no libGL/X11 on a headless door controller).
GUI_OPENCV = "pip uninstall -y opencv-python-headless && pip install opencv-python"


def opencv_has_gui(build_information: str) -> bool:
    """True when an OpenCV build (``cv2.getBuildInformation()``) can open windows."""
    found = re.search(r"^\s*GUI:\s*(\S+)", build_information, re.M)
    return found is not None and found.group(1).upper() != "NONE"


def require_gui(what: str) -> None:
    """A one-line CaptureError unless this OpenCV can show windows (desktop build)."""
    import cv2

    if not opencv_has_gui(cv2.getBuildInformation()):
        raise CaptureError(
            f"{what} shows a window, which this OpenCV (headless) cannot: {GUI_OPENCV}"
        )


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

    if not has_display():
        raise CaptureError(
            "no display (DISPLAY/WAYLAND_DISPLAY unset): facegate live needs a screen"
        )
    require_gui("facegate live")
    if args.camera is not None:
        source = config.source.model_copy(update={"kind": "camera", "camera": args.camera})
        config = config.model_copy(update={"source": source})

    from facegate.daemon.app import build_verifier
    from facegate.daemon.live import run_live

    with opened_registry(config) as registry:
        verifier = build_verifier(registry, config)
    return run_live(config, verifier)
