"""``facegate models list|activate|rollback``: the registry's model versions.

Activation and rollback verify the model's files against their sha256 before anything
changes, re-embed the galleries with it, then switch in one registry call; a running daemon
follows within ``scheduler.model_watch_s`` seconds.
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from typing import Any

from facegate.cli.tables import opened_registry, print_json, print_table
from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models list``, ``models activate SHA`` and ``models rollback``."""
    models = subparsers.add_parser("models", help="model versions: list, activate, roll back")
    commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="every model version with hash, metrics, status")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=run_list)
    activate = commands.add_parser(
        "activate", help="verify a model, re-embed the galleries with it and make it active"
    )
    activate.add_argument("sha", metavar="SHA", help="sha256 or a unique prefix (6+ characters)")
    activate.add_argument("--why", default="activated by hand", help="reason recorded")
    activate.set_defaults(handler=run_activate)
    rollback = commands.add_parser("rollback", help="re-activate the previously promoted model")
    rollback.add_argument("--why", default="rolled back by hand", help="reason recorded")
    rollback.set_defaults(handler=run_rollback)


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def version_dict(version: Any) -> dict[str, Any]:
    """A ModelVersion as a JSON-ready dict."""
    return {
        "sha256": version.sha256,
        "name": version.name,
        "path": version.path,
        "status": version.status,
        "active": version.active,
        "created_at": _time(version.created_at),
        "promoted_at": _time(version.promoted_at),
        "why": version.why,
        "metrics": version.metrics,
    }


def _metrics_line(metrics: dict[str, Any]) -> str:
    """The candidate-side evaluation numbers, e.g. ``site_heldout FAR 0.000 FRR 0.050``."""
    new = metrics.get("evaluation", {}).get("new", {})
    parts = [
        f"{name} FAR {numbers['far']:.3f} FRR {numbers['frr']:.3f} AUC {numbers['auc']:.3f}"
        for name, numbers in new.items()
        if {"far", "frr", "auc"} <= set(numbers)
    ]
    return "; ".join(parts)


def run_list(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print every model version, oldest first."""
    with opened_registry(config) as registry:
        versions = registry.list_models()
    if args.json:
        print_json([version_dict(v) for v in versions])
        return 0
    rows = [
        (
            "*" if v.active else "",
            v.sha256[:12],
            v.status,
            _time(v.promoted_at) or _time(v.created_at),
            v.name,
        )
        for v in versions
    ]
    notes = [
        [
            f"{label}: {text}"
            for label, text in (("why", v.why), ("metrics", _metrics_line(v.metrics)))
            if text
        ]
        for v in versions
    ]
    header = ("ACTIVE", "SHA256", "STATUS", "SINCE", "NAME")
    print_table(header, rows, "no model versions yet", notes=notes)
    return 0


def run_activate(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Verify, re-embed and activate one model version."""
    from facegate.scheduler.promote import activate

    with opened_registry(config) as registry:
        version = activate(registry, args.sha, args.why, config.model.runtime, config.model.variant)
    print(f"active model: {version.sha256[:12]} {version.name}")
    return 0


def run_rollback(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Re-activate the previously promoted model version."""
    from facegate.scheduler.promote import rollback

    with opened_registry(config) as registry:
        version = rollback(registry, args.why, config.model.runtime, config.model.variant)
    print(f"active model: {version.sha256[:12]} {version.name} (rolled back)")
    return 0
