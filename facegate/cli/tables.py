"""What the listing commands share: the registry opened for one command, JSON, aligned tables."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from facegate.config import FacegateConfig

if TYPE_CHECKING:
    from facegate.storage.registry import Registry

GAP = "  "
NOTE_INDENT = "    "


@contextmanager
def opened_registry(config: FacegateConfig) -> Iterator[Registry]:
    """The configured registry for one command, closed when the block ends (also on error).

    When the command changed what doors serve (users, galleries, the active model), the
    doors are told over MQTT so they reload now rather than at their next poll."""
    from facegate.storage.registry import open_registry

    registry = open_registry(config.storage)
    try:
        before = _revision(registry)
        try:
            yield registry
        finally:
            # Cannot tell (None): a spare notice costs the doors one reload.
            after = _revision(registry)
            changed = before is None or after is None or after != before
            if changed:
                from facegate.daemon.registry_notice import announce_registry_change

                announce_registry_change(config)
    finally:
        registry.close()


def _revision(registry: Registry) -> tuple | None:
    from facegate.errors import StorageError

    try:
        return registry.revision()
    except StorageError:
        return None


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (non-ASCII kept, dates and the like as strings)."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], right: Collection[int] = ()
) -> list[str]:
    """A header line and one line per row; each column as wide as its widest cell, two spaces
    apart, right-aligned when its index is in ``right`` (numbers); no trailing blanks."""
    cells = [[str(c) for c in header], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(line[k]) for line in cells) for k in range(len(header))]
    lines = []
    for line in cells:
        padded = [
            cell.rjust(widths[k]) if k in right else cell.ljust(widths[k])
            for k, cell in enumerate(line)
        ]
        lines.append(GAP.join(padded).rstrip())
    return lines


def print_table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    empty: str,
    right: Collection[int] = (),
    notes: Sequence[Sequence[str]] | None = None,
) -> None:
    """Print a table (see ``format_table``), or the line ``empty`` when there are no rows;
    ``notes[i]`` are extra lines printed indented under row ``i``."""
    if not rows:
        print(empty)
        return
    lines = format_table(header, rows, right)
    print(lines[0])
    for i, line in enumerate(lines[1:]):
        print(line)
        for note in notes[i] if notes else ():
            print(NOTE_INDENT + note)
