"""``facegate config check FILE`` and ``facegate config example``."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from facegate.config import FacegateConfig, load_config


def example_text() -> str:
    """The complete, commented example configuration shipped with the package."""
    return resources.files("facegate").joinpath("example.toml").read_text(encoding="utf-8")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``config`` commands."""
    parser = subparsers.add_parser("config", help="check or print a configuration")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_check)
    example = sub.add_parser("example", help="print a complete, commented example")
    example.set_defaults(handler=_example)


def _check(args: argparse.Namespace, config: FacegateConfig) -> int:
    checked = load_config(args.file)
    print(f"{args.file}: ok (door {checked.door}, registry {checked.storage.resolved_url})")
    return 0


def _example(args: argparse.Namespace, config: FacegateConfig) -> int:
    print(example_text(), end="")
    return 0
