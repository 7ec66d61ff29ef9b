"""The CLI's table printer: aligned columns, right-aligned numbers, notes, the empty case."""

from __future__ import annotations

import pytest

from facegate.cli.tables import format_table, print_table


def test_columns_are_as_wide_as_their_widest_cell() -> None:
    lines = format_table(
        ("ID", "NAME", "NOTE"), [(7, "Ada", None), (123, "Grace Hopper", "x")], {0}
    )
    assert lines == [
        " ID  NAME          NOTE",
        "  7  Ada           -",
        "123  Grace Hopper  x",
    ]


def test_notes_under_their_row_and_the_empty_line(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(("A", "B"), [("1", "2"), ("3", "4")], "nothing", notes=[["why: x"], []])
    assert capsys.readouterr().out.splitlines() == ["A  B", "1  2", "    why: x", "3  4"]
    print_table(("A", "B"), [], "nothing")
    assert capsys.readouterr().out == "nothing\n"
