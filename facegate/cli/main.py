"""The ``facegate`` command: parses arguments, loads the config once and dispatches.

Each command group lives in its own module under ``facegate.cli`` with a
``register(subparsers)`` function that adds its parsers and sets ``handler`` to a function
``(args, config) -> int``. Command modules import nothing heavy at module level, so
``facegate --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from facegate import __version__
from facegate.config import load_config
from facegate.errors import FacegateError
from facegate.logs import setup_logging

logger = logging.getLogger(__name__)

# One line per command module; each registers its own sub-commands.
COMMAND_MODULES: tuple[str, ...] = (
    "facegate.cli.model_cmd",
    "facegate.cli.verify_cmd",
    "facegate.cli.convert_cmd",
    "facegate.cli.enroll_cmd",
    "facegate.cli.users_cmd",
    "facegate.cli.gallery_cmd",
    "facegate.cli.db_cmd",
    "facegate.cli.run_cmd",
    "facegate.cli.config_cmd",
    "facegate.cli.live_cmd",
    "facegate.cli.doctor_cmd",
    "facegate.cli.train_cmd",
    "facegate.cli.evaluate_cmd",
    "facegate.cli.data_cmd",
    "facegate.cli.collect_cmd",
    "facegate.cli.jobs_cmd",
    "facegate.cli.models_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="facegate", description="Face-verification access control for doors."
    )
    parser.add_argument("--version", action="version", version=f"facegate {__version__}")
    parser.add_argument("--config", type=Path, default=None, help="TOML configuration file")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override the configured log level",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """Move ``--config FILE`` and ``--log-level L`` given after the command to the front, so
    ``facegate run --config FILE`` works as well as ``facegate --config FILE run``."""
    front: list[str] = []
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--":
            rest.extend(items[i:])
            break
        if item in ("--config", "--log-level") and i + 1 < len(items):
            front.extend(items[i : i + 2])
            i += 2
            continue
        if item.startswith(("--config=", "--log-level=")):
            front.append(item)
        else:
            rest.append(item)
        i += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(hoist_global_options(sys.argv[1:] if argv is None else argv))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        setup_logging(args.log_level or config.logging.level)
        return int(handler(args, config) or 0)
    except FacegateError as err:
        print(f"facegate: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("facegate: interrupted", file=sys.stderr)
        return 130
