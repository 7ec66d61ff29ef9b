"""``facegate users``: list, show, enable, disable, rename, delete and set users' access rules."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, time, timedelta
from typing import Any

from facegate.cli.tables import opened_registry, print_json, print_table
from facegate.config import FacegateConfig
from facegate.errors import FacegateError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``users list|show|enable|disable|rename|delete|set``."""
    users = subparsers.add_parser("users", help="manage enrolled users")
    commands = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="every user with their gallery size")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="one user's details")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=run_show)

    for verb, active in (("enable", True), ("disable", False)):
        cmd = commands.add_parser(verb, help=f"{verb} a user's access")
        cmd.add_argument("name")
        cmd.set_defaults(handler=run_enable, active=active)

    rename = commands.add_parser("rename", help="give a user a new name")
    rename.add_argument("name")
    rename.add_argument("new_name")
    rename.set_defaults(handler=run_rename)

    remove = commands.add_parser(
        "delete", help="delete a user with their images and embeddings (for privacy)"
    )
    remove.add_argument("name")
    remove.set_defaults(handler=run_delete)

    rules = commands.add_parser("set", help="set a user's validity, schedule, consent or name")
    rules.add_argument("name")
    rules.add_argument(
        "--valid-from",
        metavar="WHEN",
        help="ISO date or date-time (local time unless an offset is given); 'none' clears",
    )
    rules.add_argument(
        "--valid-until",
        metavar="WHEN",
        help="ISO date (access ends after that day) or date-time; 'none' clears",
    )
    rules.add_argument(
        "--schedule",
        metavar="SPANS",
        help="weekly hours, e.g. 'mon-fri 07:00-19:00; sat 09:00-12:00'; 'none' clears",
    )
    rules.add_argument(
        "--consent",
        choices=["yes", "no"],
        help="whether recent granted captures may be added to this user's gallery",
    )
    rules.add_argument("--display-name", metavar="TEXT", help="the name shown in events")
    rules.set_defaults(handler=run_set)


def _clears(value: str) -> bool:
    return value.strip().lower() in ("", "none", "never", "-")


def parse_when(text: str, end_of_day: bool = False) -> datetime | None:
    """An ISO date or date-time to aware UTC (naive means local time); 'none' gives None.

    A plain date means its start, or with ``end_of_day`` the start of the next day.
    """
    if _clears(text):
        return None
    try:
        if len(text.strip()) == 10:
            day = datetime.fromisoformat(text.strip()).date()
            if end_of_day:
                day += timedelta(days=1)
            moment = datetime.combine(day, time())
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise FacegateError(f"bad date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from err
    return moment.astimezone() if moment.tzinfo is None else moment


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def run_list(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print every user."""
    from facegate.enrollment.views import user_view

    with opened_registry(config) as registry:
        users = registry.list_users()
    if args.json:
        print_json([user_view(u) for u in users])
        return 0
    rows = [
        (
            u.id,
            u.name,
            "yes" if u.active else "no",
            u.image_count,
            _when(u.valid_until),
            u.schedule or "any time",
        )
        for u in users
    ]
    header = ("ID", "NAME", "ACTIVE", "IMAGES", "VALID UNTIL", "SCHEDULE")
    print_table(header, rows, "no users enrolled", right={0, 3})
    return 0


def run_show(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Print one user."""
    from facegate.enrollment.views import user_view

    with opened_registry(config) as registry:
        user = registry.get_user(args.name)
    if args.json:
        print_json(user_view(user))
        return 0
    print(f"name:          {user.name}")
    print(f"display name:  {user.display_name}")
    print(f"id:            {user.id}")
    print(f"active:        {'yes' if user.active else 'no'}")
    print(f"valid from:    {_when(user.valid_from)}")
    print(f"valid until:   {_when(user.valid_until)}")
    print(f"schedule:      {user.schedule or 'any time'}")
    print(f"consent:       {'yes' if user.gallery_consent else 'no'} (gallery self-update)")
    print(f"images:        {user.image_count}")
    print(f"enrolled:      {_when(user.created_at)}")
    return 0


def run_enable(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Enable or disable a user."""
    with opened_registry(config) as registry:
        user = registry.update_user(args.name, active=args.active)
    print(f"{user.name}: {'enabled' if user.active else 'disabled'}")
    return 0


def run_rename(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Rename a user."""
    with opened_registry(config) as registry:
        user = registry.rename_user(args.name, args.new_name)
    print(f"renamed to {user.name}")
    return 0


def run_delete(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Delete a user, their images, embeddings and crop files."""
    with opened_registry(config) as registry:
        user = registry.get_user(args.name)
        removed = registry.delete_user(user.name)
    print(f"deleted {user.name}: {user.image_count} images, {removed} crop files removed")
    return 0


def run_set(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Change a user's validity dates, schedule, consent or display name."""
    changes: dict[str, Any] = {}
    if args.valid_from is not None:
        changes["valid_from"] = parse_when(args.valid_from)
    if args.valid_until is not None:
        changes["valid_until"] = parse_when(args.valid_until, end_of_day=True)
    if args.schedule is not None:
        changes["schedule"] = None if _clears(args.schedule) else args.schedule
    if args.consent is not None:
        changes["gallery_consent"] = args.consent == "yes"
    if args.display_name is not None:
        changes["display_name"] = args.display_name
    if not changes:
        raise FacegateError(
            "nothing to set: give --valid-from, --valid-until, --schedule, --consent "
            "or --display-name"
        )
    with opened_registry(config) as registry:
        user = registry.update_user(args.name, **changes)
    print(
        f"{user.name}: valid {_when(user.valid_from)} to {_when(user.valid_until)}, "
        f"schedule {user.schedule or 'any time'}, "
        f"consent {'yes' if user.gallery_consent else 'no'}"
    )
    return 0
