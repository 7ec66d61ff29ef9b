"""User names: free Unicode text for display, checked and normalised, never used as a path."""

from __future__ import annotations

import unicodedata

NAME_MAX_CHARS = 128


def clean_name(raw: str) -> str:
    """Normalise a user name (NFC, trimmed); raise ValueError when empty, too long or unsafe.

    Any printable Unicode is allowed; control, format and separator characters other than a
    plain space are refused so that names print on one line and cannot spoof another name.
    """
    name = unicodedata.normalize("NFC", str(raw)).strip()
    if not name:
        raise ValueError("a name cannot be empty")
    if len(name) > NAME_MAX_CHARS:
        raise ValueError(f"a name is at most {NAME_MAX_CHARS} characters")
    for char in name:
        category = unicodedata.category(char)
        if category[0] == "C" or (category in ("Zl", "Zp")) or (category == "Zs" and char != " "):
            raise ValueError(f"a name cannot contain the character U+{ord(char):04X}")
    return name
