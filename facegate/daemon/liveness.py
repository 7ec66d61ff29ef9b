"""A baseline anti-spoofing check over the faces of one burst (pure).

A replayed still (a printed photo held perfectly still, a frozen stream, an injected file)
gives pixel-identical crops or landmarks that do not move at all; a live face always changes a
little between frames. What this does NOT stop: a video of the person played on a screen, a
photo moved by hand, a mask. It is a floor, not a presentation-attack detector.
"""

from __future__ import annotations

import numpy as np

from facegate.face.types import AlignedFace

# Largest landmark displacement (pixels) still counted as "not moving at all".
STILL_LANDMARKS_PX = 0.25


def looks_live(faces: list[AlignedFace]) -> bool:
    """False when two or more faces exist and every one is identical or unmoved.

    With fewer than two faces (a one-frame burst, such as an image trigger) nothing can be
    told, and the burst is not rejected here.
    """
    if len(faces) < 2:
        return True
    first = faces[0]
    for face in faces[1:]:
        if first.crop.shape != face.crop.shape or np.any(first.crop != face.crop):
            moved = np.abs(face.detection.landmarks - first.detection.landmarks).max()
            if moved > STILL_LANDMARKS_PX:
                return True
    return False
