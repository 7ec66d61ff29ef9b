"""Align a detected face to a canonical crop with a least-squares similarity transform."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from facegate.face.types import AlignSpec

logger = logging.getLogger(__name__)

# Where (right eye, left eye, nose tip, mouth centre) go, in [0, 1] crop coordinates. Built from
# the mean BlazeFace landmarks of 985 LFW deep-funneled faces (eyes levelled, in units of the
# eye distance d: nose (0, 0.60 d) and mouth (0, 1.12 d) below the eye midpoint) with d = 0.33
# of the crop and the eye line at 0.40: the face from mid-forehead to chin and ear to ear fills
# the crop, as the central face of an LFW image does.
DEFAULT_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.335, 0.40),
    (0.665, 0.40),
    (0.50, 0.60),
    (0.50, 0.77),
)

# Mean refined full-range BlazeFace landmarks (Landmark order, (x, y) pixels) of the face
# nearest the centre in 985 random 250x250 LFW deep-funneled images (those passing the gate).
_LFW_MEAN_LANDMARKS_250 = np.array(
    [
        [104.2, 113.4],
        [146.8, 112.9],
        [125.5, 138.7],
        [126.2, 160.6],
        [83.1, 125.1],
        [170.7, 123.5],
    ],
    dtype=np.float32,
)
_LFW_SIDE = 250.0

# The four template points of an LFW deep-funneled image itself (mean landmarks / 250): a
# crop with this template looks like an LFW image, a loose face crop detectors handle well.
LFW_CROP_TEMPLATE: tuple[tuple[float, float], ...] = tuple(
    (float(x) / _LFW_SIDE, float(y) / _LFW_SIDE) for x, y in _LFW_MEAN_LANDMARKS_250[:4]
)


def default_spec(size: int) -> AlignSpec:
    """An AlignSpec of ``size`` x ``size`` pixels with DEFAULT_TEMPLATE."""
    return AlignSpec(size=int(size), template=DEFAULT_TEMPLATE)


def fallback_landmarks(height: int, width: int) -> np.ndarray:
    """(6, 2) float32 landmarks of a typical centred LFW-style face, scaled to width x height.

    Used where no face is found (evaluation's "centre crop").
    """
    scale = np.array([width / _LFW_SIDE, height / _LFW_SIDE], dtype=np.float32)
    return _LFW_MEAN_LANDMARKS_250 * scale


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping src to dst (Umeyama).

    ``src`` and ``dst`` are (K, 2) point sets, K >= 2; returns a (2, 3) float64 matrix ``M``
    with ``dst ~= src @ M[:, :2].T + M[:, 2]``. Raises ValueError if ``src`` is degenerate.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need matching point sets of at least 2 points, got {src.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("points must be finite")
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1e-12:
        raise ValueError("source points are all the same")
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    # Umeyama's reflection fix: never return a mirror image.
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rotation = u @ fix @ vt
    scale = (sigma * np.diag(fix)).sum() / src_var
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def align_face(rgb: np.ndarray, landmarks: np.ndarray, spec: AlignSpec) -> np.ndarray:
    """Warp the face to an (S, S, 3) uint8 RGB crop, S = spec.size.

    The similarity is fitted on the first ``len(spec.template)`` rows of ``landmarks`` ((6, 2)
    or (K, 2) frame pixels in Landmark order) to the template scaled by S. Pixels from outside
    the frame replicate its border. Raises ValueError for degenerate landmarks.
    """
    size = int(spec.size)
    template = np.asarray(spec.template, dtype=np.float64) * size
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)[: len(template)]
    matrix = similarity_transform(points, template)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    # Crop the region the output sees first: warping a big frame is slower, and shrinking that
    # region with INTER_AREA before a strong downscale avoids the aliasing warpAffine gives.
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = rgb.shape[:2]
    x0 = int(np.clip(np.floor(mapped[:, 0].min()) - 2, 0, width - 1))
    y0 = int(np.clip(np.floor(mapped[:, 1].min()) - 2, 0, height - 1))
    x1 = int(np.clip(np.ceil(mapped[:, 0].max()) + 3, x0 + 1, width))
    y1 = int(np.clip(np.ceil(mapped[:, 1].max()) + 3, y0 + 1, height))
    region = rgb[y0:y1, x0:x1]
    matrix = matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    if scale < 0.5 and min(region.shape[:2]) > 2:
        new_w = max(1, round(region.shape[1] * scale))
        new_h = max(1, round(region.shape[0] * scale))
        fx = new_w / region.shape[1]
        fy = new_h / region.shape[0]
        region = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
        # cv2.resize maps pixel centres: q = (r + 0.5) / f - 0.5 for region q, resized r.
        matrix[:, 2] += matrix[:, :2] @ np.array([0.5 / fx - 0.5, 0.5 / fy - 0.5])
        matrix[:, 0] /= fx
        matrix[:, 1] /= fy
    return cv2.warpAffine(
        np.ascontiguousarray(region),
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


# The canonical gallery chip: a face stored once, independent of any model, from which every
# model's crop is re-derived (``align_face(chip, chip_landmarks, spec)``). Eyes 0.25 of the
# side apart (64 px at 256), eye line at 0.40: DEFAULT_TEMPLATE's and the dlib template's
# crops need 1.5 and 1.35 eye distances either side of the eye midpoint, 1.2 above the eyes
# and 1.9 below; the chip holds 2.0, 1.6 and 2.4, so a model crop lies inside it with about
# 30% to spare for faces whose landmarks fit the templates less well. The crops of those
# templates at 150 px have eyes 50-56 px apart: the chip never upsamples on re-derivation.
CHIP_SIZE = 256
CHIP_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.375, 0.40),
    (0.625, 0.40),
    (0.50, 0.55),
    (0.50, 0.68),
)


def canonical_chip(rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model-independent chip of a face and its landmarks in chip pixels.

    ``rgb`` is the (H, W, 3) uint8 frame and ``landmarks`` the (K, 2) frame pixels the face
    pipeline aligned with (Landmark order). Returns the (CHIP_SIZE, CHIP_SIZE, 3) uint8 chip
    and (K, 2) float64 landmarks mapped by the same similarity, so that
    ``align_face(chip, chip_landmarks, spec)`` fits the same transform, up to the chip's
    mapping, as ``align_face(rgb, landmarks, spec)`` (a least-squares similarity fit commutes
    with a similarity of its source points). Raises ValueError for degenerate landmarks.
    """
    spec = AlignSpec(size=CHIP_SIZE, template=CHIP_TEMPLATE)
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    template = np.asarray(CHIP_TEMPLATE, dtype=np.float64) * CHIP_SIZE
    matrix = similarity_transform(points[: len(template)], template)
    chip = align_face(rgb, points, spec)
    return chip, points @ matrix[:, :2].T + matrix[:, 2]
