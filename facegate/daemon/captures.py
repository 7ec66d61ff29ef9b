"""Decision captures on disk: biometric data, so private files and bounded retention."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

CAPTURE_DIR = "captures"


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """(H, W, 3) uint8 RGB to JPEG bytes."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise OSError("JPEG encoding failed")
    return data.tobytes()


def save_capture(data_dir: Path, decision_id: str, when: datetime, rgb: np.ndarray) -> str:
    """Write ``captures/YYYY-MM-DD/<decision_id>.jpg`` privately; return its relative path.

    Raise OSError (disk full, no permission) leaving no partial file.
    """
    relative = Path(CAPTURE_DIR) / when.strftime("%Y-%m-%d") / f"{decision_id}.jpg"
    target = Path(data_dir) / relative
    for directory in (Path(data_dir) / CAPTURE_DIR, target.parent):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    data = encode_jpeg(rgb)
    temp = target.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    except BaseException:
        # A full disk leaves a truncated file: never keep half a capture behind.
        temp.unlink(missing_ok=True)
        raise
    return str(relative)
