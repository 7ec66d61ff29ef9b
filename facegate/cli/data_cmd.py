"""``facegate data``: import LFW and describe identity-labelled image trees."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data import-lfw`` and ``data info``."""
    data = subparsers.add_parser("data", help="training and evaluation datasets")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    imp = sub.add_parser(
        "import-lfw",
        help="check LFW (lfw.tgz, lfw-deepfunneled.tgz or an extracted tree) and install it",
    )
    imp.add_argument("src", type=Path, metavar="SRC", help="the tarball or the extracted folder")
    imp.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="where to install (default: <data_dir>/datasets/lfw)",
    )
    imp.add_argument("--json", action="store_true", help="print one JSON object")
    imp.set_defaults(handler=run_import)
    info = sub.add_parser("info", help="people and images of an <identity>/<images> tree")
    info.add_argument("dir", type=Path, metavar="DIR")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=run_info)


def default_lfw_dest(config: FacegateConfig) -> Path:
    """Where ``import-lfw`` installs LFW when no --dest is given."""
    return config.storage.data_dir / "datasets" / "lfw"


def run_import(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Import LFW and print what was installed."""
    from facegate.training.lfw import import_lfw

    report = import_lfw(args.src, args.dest or default_lfw_dest(config))
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
        return 0
    print(f"installed LFW into {report.dest}")
    print(f"  people:                {report.people}")
    print(f"  images:                {report.images}")
    print(f"  people with >= 2:      {report.multi_image_people} (usable for genuine pairs)")
    print(f"  usable as negatives:   {report.usable_negatives}")
    print(f"  complete release:      {'yes' if report.complete else 'no (a subset)'}")
    if report.md5_checked:
        print(f"  MD5 checked:           {report.md5_checked} files")
    return 0


def run_info(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print the counts of an identity tree."""
    from facegate.training.lfw import index_tree

    summary = index_tree(args.dir).summary()
    summary.pop("excluded_people")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    print(f"{args.dir}")
    print(f"  people:             {summary['people']}")
    print(f"  images:             {summary['images']}")
    print(
        f"  people with >= 2:   {summary['people_with_2_or_more']} "
        f"({summary['images_of_people_with_2_or_more']} images)"
    )
    return 0
