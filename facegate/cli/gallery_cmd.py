"""``facegate gallery``: add images to, remove one from, or list a user's gallery."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from facegate.cli.tables import opened_registry, print_json, print_table
from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gallery add|remove|list``."""
    gallery = subparsers.add_parser("gallery", help="manage a user's gallery images")
    commands = gallery.add_subparsers(dest="gallery_command", metavar="COMMAND", required=True)

    add = commands.add_parser("add", help="add images or directories to a user's gallery")
    add.add_argument("name")
    add.add_argument("sources", nargs="+", type=Path, help="image files or directories")
    add.add_argument("--model", type=Path, help="model directory (default: the active one)")
    add.add_argument("--json", action="store_true", help="print the report as JSON")
    add.set_defaults(handler=run_add)

    remove = commands.add_parser("remove", help="remove one image (by id) from a gallery")
    remove.add_argument("name")
    remove.add_argument("image_id", type=int)
    remove.set_defaults(handler=run_remove)

    listing = commands.add_parser("list", help="a user's gallery images")
    listing.add_argument("name")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=run_list)


def run_add(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Add images to an existing user's gallery; 1 when none could be added."""
    from facegate.cli.enroll_cmd import print_report
    from facegate.enrollment.enroll import TooFewImagesError, add_images
    from facegate.enrollment.loading import load_tools

    with opened_registry(config) as registry:
        registry.get_user(args.name)
        pipeline, model = load_tools(registry, config, args.model)
        try:
            report = add_images(registry, pipeline, model, args.name, args.sources, config)
        except TooFewImagesError as err:
            print_report(err.report, args.json, verb="added to")
            print(f"facegate: error: {err}", file=sys.stderr)
            return 1
    print_report(report, args.json, verb="added to")
    return 0


def run_remove(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Remove one gallery image with its embeddings and (unshared) crop file."""
    with opened_registry(config) as registry:
        image = registry.remove_gallery_image(args.name, args.image_id)
        left = len(registry.gallery(args.name))
    print(f"removed image {image.id} ({image.source}); {left} left")
    return 0


def run_list(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print a user's gallery."""
    from facegate.enrollment.views import image_view

    with opened_registry(config) as registry:
        images = registry.gallery(args.name)
    if args.json:
        print_json([image_view(i) for i in images])
        return 0
    rows = [
        (
            i.id,
            f"{i.quality:.3f}",
            i.added_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            i.sha256[:12],
            # A crop from before schema 0002: re-enroll from photos (facegate doctor says why).
            "legacy" if i.legacy else "chip",
            i.source,
        )
        for i in images
    ]
    header = ("ID", "QUALITY", "ADDED", "SHA256", "STORED", "SOURCE")
    print_table(header, rows, "no images", right={0, 1})
    return 0
