"""``facegate run``: the access daemon."""

from __future__ import annotations

import argparse

from facegate.config import FacegateConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help="run the door daemon (use the global --config FILE)",
        description="Watch the camera and the MQTT triggers, verify faces, drive the door.",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, config: FacegateConfig) -> int:
    from facegate.daemon.app import FacegateDaemon

    return FacegateDaemon(config).run()
