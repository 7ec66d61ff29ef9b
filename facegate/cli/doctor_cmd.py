"""``facegate doctor [--json] [--check NAME]``: one line per health check, with a fix."""

from __future__ import annotations

import argparse
import json

from facegate.config import FacegateConfig

# Kept here as well as in facegate.doctor so --help needs no import of the checks.
CHECKS = ("config", "camera", "broker", "registry", "model", "galleries", "time", "disk")
_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``doctor`` command."""
    parser = subparsers.add_parser(
        "doctor",
        help="check camera, broker, registry, model, galleries, clock and disk",
        description="Check this installation; exit 1 when any check fails.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array of checks")
    parser.add_argument(
        "--check",
        action="append",
        choices=CHECKS,
        default=[],
        metavar="NAME",
        help=f"run only this check (repeatable): {', '.join(CHECKS)}",
    )
    parser.add_argument(
        "--timeout", type=float, default=20.0, metavar="S", help="time bound of each check"
    )
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace, config: FacegateConfig) -> int:
    from facegate.doctor import run_checks

    results = run_checks(config, args.config, only=args.check, timeout_s=args.timeout)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            fix = f"  -> fix: {r.fix}" if r.fix else ""
            print(f"{_MARK[r.status]}  {r.name:<{width}}  {r.detail}{fix}")
    return 0 if all(r.ok for r in results) else 1
