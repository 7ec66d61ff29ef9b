"""``facegate collect`` without a display or a camera fails with one line and exit 1."""

from pathlib import Path

import numpy as np
import pytest

from facegate.cli.main import main
from facegate.training import collect


def test_no_display_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["collect", "--out", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegate: error: no display") and "\n" not in err
    assert not (tmp_path / "data").exists()


def test_no_camera_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import cv2

    from facegate.cli.live_cmd import GUI_OPENCV, opencv_has_gui

    monkeypatch.setenv("DISPLAY", ":99")  # past the display check, to the camera
    assert main(["collect", "--out", str(tmp_path / "data"), "--camera", "97"]) == 1
    err = capfd.readouterr().err.strip()
    if opencv_has_gui(cv2.getBuildInformation()):
        assert err == "facegate: error: cannot open camera 97 (no such device, or it is busy)"
    else:  # the test install's headless OpenCV stops before the camera, naming the fix
        assert err.startswith("facegate: error: facegate collect shows a window")
        assert err.endswith(GUI_OPENCV) and "\n" not in err


def test_keys_save_uuid_named_crops(tmp_path: Path) -> None:
    session = collect.CollectSession(tmp_path)
    crop = np.full((collect.CROP_SIZE, collect.CROP_SIZE, 3), 90, np.uint8)
    assert session.handle_key(ord("a"), crop)
    assert session.handle_key(ord("p"), crop)
    assert session.handle_key(ord("p"), None)  # no face in view: nothing saved
    assert session.handle_key(ord("x"), crop)
    assert not session.handle_key(ord("q"), crop)
    assert session.counts == {"anchor": 1, "positive": 1}
    (anchor,) = (tmp_path / "anchor").iterdir()
    assert len(anchor.stem) == 36 and anchor.suffix == ".jpg"


def test_lfw_style_spec_matches_the_fallback_geometry() -> None:
    from facegate.face.align import fallback_landmarks

    spec = collect.lfw_style_spec()
    points = np.asarray(spec.template) * spec.size
    np.testing.assert_allclose(points, fallback_landmarks(250, 250)[:4], atol=1e-3)
