"""``facegate live``: refuses without a display; the overlay draws on a real face."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from facegate.cli.main import main
from facegate.daemon.live import Banner, draw_overlay


def test_live_without_display_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["live", "--camera", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no display" in err and err.count("\n") == 0


def test_overlay_marks_the_face_and_the_decision(lfw_images: Path) -> None:
    from facegate.config import FaceConfig
    from facegate.face.align import default_spec
    from facegate.face.pipeline import FacePipeline

    path = next((lfw_images / "Colin_Powell").glob("*.jpg"))
    bgr = cv2.imread(str(path))
    face = FacePipeline(FaceConfig(), default_spec(112)).process(
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    )
    assert face.face is not None
    out = draw_overlay(bgr, face, Banner("GRANTED Ada 0.990 (granted)", True))
    assert out.shape == bgr.shape and not np.array_equal(out, bgr)
    x0, y0, _, _ = (round(float(v)) for v in face.face.detection.box)
    assert tuple(out[y0, x0 + 5]) == (0, 200, 0)  # the green box edge
    assert np.array_equal(bgr, cv2.imread(str(path)))  # the input frame is untouched
