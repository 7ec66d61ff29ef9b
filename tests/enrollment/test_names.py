"""User names: any printable Unicode, trimmed and NFC-normalised; unsafe text refused."""

from __future__ import annotations

import pytest

from facegate.enrollment.names import NAME_MAX_CHARS, clean_name


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Alice  ", "Alice"),
        ("Zoe\u0308", "Zoë"),  # combining diaeresis composed (NFC)
        ("李小龍", "李小龍"),
        ("../../etc/passwd", "../../etc/passwd"),  # allowed as text; never a path
        ("O'Brien-Smith Jr.", "O'Brien-Smith Jr."),
        ("x" * NAME_MAX_CHARS, "x" * NAME_MAX_CHARS),
    ],
)
def test_good_names(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "a\nb", "a\tb", "a\x00b", "a\u202eb", "a\u2028b", "a\u00a0b", "x" * 129],
)
def test_bad_names(raw: str) -> None:
    with pytest.raises(ValueError):
        clean_name(raw)
