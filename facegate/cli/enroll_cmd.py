"""``facegate enroll``: add a person from photos or a camera, all or nothing."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from facegate.cli.tables import opened_registry
from facegate.config import FacegateConfig
from facegate.errors import FacegateError

if TYPE_CHECKING:
    from facegate.enrollment.enroll import EnrollmentReport

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``enroll``."""
    enroll = subparsers.add_parser(
        "enroll",
        help="enroll a person from images, directories or a camera",
        description="Detect, align, quality-check, deduplicate and embed the person's images "
        "and store them in one step; with fewer good images than enrollment.min_images "
        "nothing is stored.",
    )
    enroll.add_argument("name", help="the person's name (any text; never used as a path)")
    enroll.add_argument("sources", nargs="*", type=Path, help="image files or directories")
    enroll.add_argument("--camera", type=int, metavar="N", help="capture from camera N instead")
    enroll.add_argument(
        "--count", type=int, metavar="K", help="images to capture (default: min_images + 2)"
    )
    enroll.add_argument("--display-name", metavar="TEXT", help="the name shown in events")
    enroll.add_argument("--model", type=Path, help="model directory (default: the active one)")
    enroll.add_argument("--json", action="store_true", help="print the report as JSON")
    enroll.set_defaults(handler=run_enroll)


def print_report(report: EnrollmentReport, as_json: bool, verb: str = "enrolled") -> None:
    """Show each rejection, duplicate and look-alike on its own line, then a summary."""
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    for item in report.rejected:
        print(f"rejected: {item.source}: {item.reason}")
    for dup in report.duplicates:
        print(f"duplicate: {dup.source} (of {dup.duplicate_of}, similarity {dup.similarity:.3f})")
    for source in report.capped:
        print(f"skipped: {source}: gallery full")
    for alike in report.lookalikes:
        print(
            f"warning: {report.name!r} looks like existing user {alike.name!r} "
            f"(score {alike.score:.3f}): a duplicate enrollment or a look-alike"
        )
    for warning in report.warnings:
        print(f"warning: {warning}")
    summary = (
        f"{len(report.accepted)} accepted, {len(report.rejected)} rejected, "
        f"{len(report.duplicates)} duplicates"
    )
    if report.stored:
        print(f"{verb} {report.name} (user {report.user_id}): {summary}")
    else:
        print(f"not {verb}: {report.name}: {summary}")


def run_enroll(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Enroll from files or a camera and print the report; 1 when nothing was stored."""
    from facegate.enrollment.enroll import TooFewImagesError, enroll, enroll_faces
    from facegate.enrollment.loading import load_tools
    from facegate.enrollment.names import clean_name

    if args.camera is None and not args.sources:
        raise FacegateError("give image files or directories, or --camera N")
    if args.camera is not None and args.sources:
        raise FacegateError("give either images or --camera, not both")
    if args.count is not None and (args.camera is None or args.count < 1):
        raise FacegateError("--count needs --camera and must be at least 1")
    try:
        name = clean_name(args.name)
    except ValueError as err:
        raise FacegateError(f"invalid name: {err}") from err
    with opened_registry(config) as registry:
        if registry.find_user(name) is not None:
            raise FacegateError(f"a user named {name!r} already exists; use 'gallery add'")
        pipeline, model = load_tools(registry, config, args.model)
        try:
            if args.camera is None:
                report = enroll(
                    registry, pipeline, model, name, args.sources, config, args.display_name
                )
            else:
                from facegate.enrollment.camera import camera_frames, capture_faces

                count = args.count or config.enrollment.min_images + 2
                candidates = capture_faces(
                    camera_frames(args.camera),
                    pipeline,
                    model,
                    count,
                    config.enrollment.duplicate_similarity,
                    progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                    source=f"camera{args.camera}",
                )
                report = enroll_faces(registry, model, name, candidates, config, args.display_name)
        except TooFewImagesError as err:
            print_report(err.report, args.json)
            print(f"facegate: error: {err}", file=sys.stderr)
            return 1
    print_report(report, args.json)
    return 0
