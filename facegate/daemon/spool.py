"""Decisions the registry refused, on disk until it takes them: they survive a restart.

One JSON object per line (the ``Registry.log_access`` fields, payloads in base64), each line
fsynced as it is added; the file is rewritten atomically when rows leave it and removed when
the last one does. A line cut short by a crash is skipped on load (logged). The file holds
what the access log holds (user ids, names, scores), so it is created private (0600) in the
data directory, which is the service user's own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from facegate.storage.records import OutboxMessage

logger = logging.getLogger(__name__)

SPOOL_DIR = "spool"


def spool_path(data_dir: Path, door: str) -> Path:
    """Where a door's held decisions are kept."""
    return Path(data_dir) / SPOOL_DIR / f"{door}-decisions.jsonl"


def _encode(fields: dict[str, Any]) -> str:
    out = dict(fields)
    if isinstance(out.get("time"), datetime):
        out["time"] = out["time"].isoformat()
    out["events"] = [
        {
            "topic": m.topic,
            "payload": base64.b64encode(m.payload).decode("ascii"),
            "qos": m.qos,
            "retain": m.retain,
        }
        for m in out.get("events", ())
    ]
    return json.dumps(out, separators=(",", ":"))


def _decode(line: str) -> dict[str, Any]:
    fields = json.loads(line)
    if not isinstance(fields, dict) or "decision_id" not in fields:
        raise ValueError("not a held decision")
    if fields.get("time") is not None:
        fields["time"] = datetime.fromisoformat(fields["time"])
    fields["events"] = tuple(
        OutboxMessage(e["topic"], base64.b64decode(e["payload"]), int(e["qos"]), bool(e["retain"]))
        for e in fields.get("events", ())
    )
    return fields


class DecisionSpool:
    """The held decisions of one door, in order, in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> list[dict[str, Any]]:
        """The held decisions' fields, oldest first ([] when there is no file)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as err:
            logger.error("cannot read held decisions from %s: %s", self.path, err)
            return []
        held = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                held.append(_decode(line))
            except (ValueError, KeyError, TypeError) as err:
                logger.error("%s:%d: unreadable held decision skipped: %s", self.path, number, err)
        return held

    def append(self, items: Iterable[dict[str, Any]]) -> None:
        """Add decisions at the end, on disk before this returns (OSError when it cannot)."""
        lines = "".join(_encode(fields) + "\n" for fields in items)
        if not lines:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, items: list[dict[str, Any]]) -> None:
        """Keep exactly ``items`` (none: remove the file), atomically."""
        if not items:
            self.path.unlink(missing_ok=True)
            return
        part = self.path.with_name(self.path.name + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(_encode(fields) + "\n" for fields in items).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, self.path)
