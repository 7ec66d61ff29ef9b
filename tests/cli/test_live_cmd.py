"""``facegate live`` needs an OpenCV that can open windows: the build information decides."""

from __future__ import annotations

import pytest

from facegate.cli.live_cmd import opencv_has_gui


@pytest.mark.parametrize(
    ("gui_line", "has_gui"),
    [
        ("  GUI:                           NONE", False),
        ("  GUI:                           QT5", True),
        ("  GUI:                           GTK3", True),
        ("  Video I/O:", False),  # no GUI line at all: assume none
    ],
)
def test_gui_from_build_information(gui_line: str, has_gui: bool) -> None:
    info = f"General configuration for OpenCV 5.0.0\n{gui_line}\n    GTK+:  NO\n"
    assert opencv_has_gui(info) is has_gui
