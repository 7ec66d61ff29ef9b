"""``facegate db``: the registry schema's status, and upgrading it."""

from __future__ import annotations

import argparse
import json
import logging

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``db upgrade|status``."""
    db = subparsers.add_parser("db", help="the registry database")
    commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = commands.add_parser("upgrade", help="create or migrate the registry schema")
    upgrade.set_defaults(handler=run_upgrade)
    status = commands.add_parser("status", help="the registry's schema version and contents")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=run_status)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run_upgrade(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Apply every pending migration."""
    from facegate.storage.db import create_engine_for, ensure_private_dir
    from facegate.storage.migrate import schema_status, upgrade

    ensure_private_dir(config.storage.data_dir)
    engine = create_engine_for(config.storage.resolved_url, config.storage.busy_timeout_s)
    try:
        before = schema_status(engine)
        after = upgrade(engine)
    finally:
        engine.dispose()
    if before.current == after.current:
        print(f"registry schema is up to date ({after.current})")
    else:
        print(f"registry schema upgraded from {before.current or 'empty'} to {after.current}")
    return 0


def run_status(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print the schema revision (without changing anything) and row counts."""
    from facegate.storage.db import create_engine_for, sqlite_path
    from facegate.storage.migrate import schema_status

    url = config.storage.resolved_url
    db_file = sqlite_path(url)
    if db_file is not None and not db_file.exists():
        info = {"url": _safe_url(url), "current": None, "head": None, "up_to_date": False}
        from facegate.storage.migrate import head_revision

        info["head"] = head_revision()
    else:
        engine = create_engine_for(url, config.storage.busy_timeout_s)
        try:
            status = schema_status(engine)
            info = {
                "url": _safe_url(url),
                "current": status.current,
                "head": status.head,
                "up_to_date": status.up_to_date,
            }
            if status.up_to_date:
                from facegate.storage.registry import Registry

                registry = Registry(engine, config.storage.data_dir)
                info["users"] = len(registry.list_users())
                info["gallery_images"] = len(registry.all_gallery_images())
                info["outbox"] = registry.outbox_depth()
                active = registry.active_model()
                info["active_model"] = active.sha256 if active else None
        finally:
            engine.dispose()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"registry:      {info['url']}")
    print(f"schema:        {info['current'] or 'empty'} (this facegate: {info['head']})")
    if not info["up_to_date"]:
        print("               run 'facegate db upgrade' (or start facegate) to migrate")
    for key in ("users", "gallery_images", "outbox", "active_model"):
        if key in info:
            print(f"{key.replace('_', ' ') + ':':<15}{info[key] if info[key] is not None else '-'}")
    return 0
