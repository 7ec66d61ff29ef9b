"""Face detection with MediaPipe's BlazeFace models, run by the LiteRT interpreter.

The models (``data/face_detection_{short,full}_range.tflite``, Apache-2.0, see
``data/NOTICE.md``) ship in the package, so nothing is downloaded at run time. Anchors, box and
keypoint decoding and the weighted non-maximum suppression follow MediaPipe's graphs
(``mediapipe/modules/face_detection/face_detection.pbtxt`` and
``face_detection_{short,full}_range.pbtxt`` in google/mediapipe v0.10: SsdAnchorsCalculator,
TensorsToDetectionsCalculator, NonMaxSuppressionCalculator options copied into ``_MODELS``).

The frame is letterboxed (aspect ratio kept, black padding) to the model's square input,
scaled to [-1, 1]; detections are mapped back to frame pixels. ``FaceMesh`` runs MediaPipe's
468-point face-mesh model (``data/face_landmark.tflite``) on a detected face, for eye corners
and the nose base (dlib-style 5-point alignment).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import cv2
import numpy as np

from facegate.face.align import LFW_CROP_TEMPLATE, align_face, similarity_transform
from facegate.face.types import AlignSpec, Detection

logger = logging.getLogger(__name__)

DetectorModel = Literal["short_range", "full_range"]

# MediaPipe clips raw logits at 100 (exp(100) overflows float32, so the sigmoid is float64).
_RAW_SCORE_CLIP = 100.0
# NonMaxSuppressionCalculator: min_suppression_threshold 0.3, IoU, WEIGHTED.
_NMS_IOU = 0.3
_NUM_KEYPOINTS = 6
# Landmark refinement re-detects on a crop framed like an LFW image of this side, in pixels.
_REFINE_SIZE = 250


@dataclass(frozen=True)
class _ModelSpec:
    """SsdAnchorsCalculator options of one BlazeFace model (fixed_anchor_size: true)."""

    file: str
    input_size: int
    strides: tuple[int, ...]
    # Anchors per cell and layer: aspect_ratios [1.0] plus one interpolated-scale anchor
    # when interpolated_scale_aspect_ratio is 1.0 (short range) and none when 0.0 (full range).
    anchors_per_layer: int


_MODELS: dict[str, _ModelSpec] = {
    # face_detection_short_range.pbtxt: num_layers 4, strides [8, 16, 16, 16], 896 anchors.
    "short_range": _ModelSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    # face_detection_full_range.pbtxt: num_layers 1, strides [4], 2304 anchors.
    "full_range": _ModelSpec("face_detection_full_range.tflite", 192, (4,), 1),
}

# BlazeFace keypoints are [subject's right eye, left eye, nose tip, mouth centre, right ear
# tragion, left ear tragion]: on an unmirrored frontal photo keypoint 0 lies on the image's
# left. That is already Landmark order (the tests check it on LFW faces), so rows are kept as is.


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """SSD anchor centres (N, 2) float32 in [0, 1], MediaPipe's order (fixed anchor size 1)."""
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        # Consecutive layers with the same stride share one feature map (MediaPipe's loop).
        repeats = 0
        while layer + repeats < len(strides) and strides[layer + repeats] == strides[layer]:
            repeats += 1
        cells = int(np.ceil(input_size / strides[layer]))
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        per_cell = anchors_per_layer * repeats
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        layer += repeats
    return np.concatenate(centres).astype(np.float32)


def model_path(model: DetectorModel) -> str:
    """Filesystem path of a packaged BlazeFace model."""
    return str(resources.files("facegate.face") / "data" / _MODELS[model].file)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box against (N, 4) boxes, all (x0, y0, x1, y1)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = _NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster's score-weighted mean box/keypoints, top score.

    ``boxes`` (N, 4), ``keypoints`` (N, K, 2), ``scores`` (N,); returns (box, keypoints, score)
    tuples sorted by score, highest first.
    """
    order = np.argsort(-scores, kind="stable")
    remaining = order
    kept: list[tuple[np.ndarray, np.ndarray, float]] = []
    while remaining.size:
        top = remaining[0]
        overlap = _iou(boxes[top], boxes[remaining])
        members = remaining[overlap > iou]
        if members.size == 0:  # degenerate (zero-area) box: keep it alone
            members = remaining[:1]
        weights = scores[members] / scores[members].sum()
        box = (boxes[members] * weights[:, None]).sum(axis=0)
        points = (keypoints[members] * weights[:, None, None]).sum(axis=0)
        kept.append((box, points, float(scores[top])))
        remaining = remaining[~np.isin(remaining, members)]
    return kept


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8; return (H, W, 3) uint8 RGB."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        # OpenCV refuses views with negative strides (a mirrored frame): copy those only.
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")


class FaceDetector:
    """BlazeFace detector: ``detect(rgb)`` on a frame of any size -> Detections, best first.

    ``min_score`` is the face probability in [0, 1] a detection needs (MediaPipe uses 0.5 for
    short range and 0.6 for full range). One interpreter per detector, created here; calls are
    serialised by a lock, so one instance may be shared between threads.
    """

    def __init__(
        self,
        model: DetectorModel = "full_range",
        min_score: float = 0.6,
        num_threads: int = 2,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if model not in _MODELS:
            raise ValueError(f"unknown detector model {model!r}")
        spec = _MODELS[model]
        self.model = model
        self.min_score = float(min_score)
        self.input_size = spec.input_size
        self._anchors = ssd_anchors(spec.input_size, spec.strides, spec.anchors_per_layer)
        self._interpreter = Interpreter(model_path=model_path(model), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        # The two outputs are told apart by shape: (1, N, 16) regressors, (1, N, 1) scores.
        self._regressors = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self._scores = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self._lock = threading.Lock()
        logger.debug("BlazeFace %s loaded (%d anchors)", model, len(self._anchors))

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input tensor (1, S, S, 3) in [-1, 1], the (x, y) scale and (x, y) padding in pixels."""
        size = self.input_size
        height, width = rgb.shape[:2]
        scale = min(size / width, size / height)
        new_w = min(size, max(1, round(width * scale)))
        new_h = min(size, max(1, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
        pad_x = (size - new_w) // 2
        pad_y = (size - new_h) // 2
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        tensor = canvas.astype(np.float32) * (2.0 / 255.0) - 1.0
        scale_xy = np.array([new_w / width, new_h / height], dtype=np.float32)
        return tensor[None], scale_xy, np.array([pad_x, pad_y], dtype=np.float32)

    def _infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self._interpreter.set_tensor(self._input, tensor)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._regressors)[0].copy()
            logits = self._interpreter.get_tensor(self._scores)[0, :, 0].copy()
        return raw, logits

    def _candidates(
        self, rgb: np.ndarray, min_score: float, x0: int = 0, y0: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), keypoints (N, 6, 2) in pixels shifted by (x0, y0), scores (N,)."""
        tensor, scale, pad = self._letterbox(rgb)
        raw, logits = self._infer(tensor)
        logits = np.clip(logits.astype(np.float64), -_RAW_SCORE_CLIP, _RAW_SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= min_score
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        size = float(self.input_size)
        # reverse_output_order: (x_centre, y_centre, w, h) then (x, y) per keypoint, all in
        # input pixels relative to the anchor centre (anchor w = h = 1).
        centre = raw[:, 0:2] / size + anchors
        half = raw[:, 2:4] / size / 2.0
        corners = np.stack([centre - half, centre + half], axis=1)  # (N, 2, 2)
        points = raw[:, 4 : 4 + 2 * _NUM_KEYPOINTS].reshape(-1, _NUM_KEYPOINTS, 2) / size
        points = points + anchors[:, None, :]
        # From [0, 1] of the letterboxed square back to pixels of this region, then the frame.
        offset = np.array([x0, y0], dtype=np.float64)
        corners = (corners * size - pad) / scale + offset
        points = (points * size - pad) / scale + offset
        return corners.reshape(-1, 4), points, scores

    def tiles(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Square tiles (x0, y0, side) covering a non-square frame along its long side.

        A wide frame letterboxed whole leaves small faces a few pixels wide at the model's
        input; tiles of the short side's size see them 1.3-1.8x bigger. Square frames get none.
        """
        side = min(height, width)
        long_side = max(height, width)
        if long_side < side * 1.2 or side < 2 * self.input_size:
            return []
        count = int(np.ceil(long_side / side))
        starts = np.linspace(0, long_side - side, count)
        if width >= height:
            return [(round(s), 0, side) for s in starts]
        return [(0, round(s), side) for s in starts]

    def detect(
        self,
        rgb: np.ndarray,
        tiled: bool = False,
        min_score: float | None = None,
        tiles_only_if_empty: bool = False,
    ) -> list[Detection]:
        """Faces in an (H, W, 3) uint8 RGB frame, highest score first, in frame pixels.

        ``tiled``: also run the model on square tiles of a wide frame (see ``tiles``), for
        small faces in big frames, at 2-3x the cost; all candidates share one NMS.
        ``tiles_only_if_empty``: skip the tiles when the whole frame already shows a face (the
        tiles would only add smaller ones). ``min_score`` overrides the detector's own.
        """
        rgb = as_rgb(rgb)
        height, width = rgb.shape[:2]
        if height == 0 or width == 0:
            return []
        floor = self.min_score if min_score is None else float(min_score)
        parts = [self._candidates(rgb, floor)]
        if tiled and not (tiles_only_if_empty and parts[0][2].size):
            for x0, y0, side in self.tiles(height, width):
                tile = rgb[y0 : y0 + side, x0 : x0 + side]
                parts.append(self._candidates(tile, floor, x0, y0))
        boxes = np.concatenate([p[0] for p in parts])
        points = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        detections = [
            Detection(
                box=tuple(float(v) for v in box),
                score=score,
                landmarks=keypoints.astype(np.float32),
            )
            for box, keypoints, score in weighted_nms(boxes, points, scores)
        ]
        logger.debug("detected %d face(s) in a %dx%d frame", len(detections), width, height)
        return detections

    def refine(self, rgb: np.ndarray, detection: Detection) -> Detection:
        """Sharper landmarks for one detection: detect again on an upright face crop.

        BlazeFace's keypoints drift on rolled faces (5-9 deg of roll error at 30 deg) and are
        coarse for faces that are small in a big frame; a second pass on a 250x250-style crop
        (the face levelled and scaled as in LFW, where the model is accurate) fixes both. The
        box and score are kept; the landmarks are replaced when the crop yields a face.
        """
        rgb = as_rgb(rgb)
        size = _REFINE_SIZE
        template = np.asarray(LFW_CROP_TEMPLATE, dtype=np.float64) * size
        points = np.asarray(detection.landmarks, dtype=np.float64)[: len(template)]
        try:
            to_crop = similarity_transform(points, template)
        except ValueError:
            return detection
        crop = align_face(rgb, points, AlignSpec(size=size, template=LFW_CROP_TEMPLATE))
        eyes_at = template[:2].mean(axis=0)
        eye_distance = float(np.linalg.norm(template[1] - template[0]))
        best = min(
            self.detect(crop),
            key=lambda d: float(np.linalg.norm(d.landmarks[:2].mean(axis=0) - eyes_at)),
            default=None,
        )
        # Only the same face: its eyes near where the first pass put them (not a neighbour).
        if best is None or np.linalg.norm(best.landmarks[:2].mean(axis=0) - eyes_at) > (
            0.5 * eye_distance
        ):
            return detection
        back = cv2.invertAffineTransform(to_crop)
        landmarks = best.landmarks.astype(np.float64) @ back[:, :2].T + back[:, 2]
        return Detection(
            box=detection.box, score=detection.score, landmarks=landmarks.astype(np.float32)
        )


# Face-mesh indices (MediaPipe's canonical 468-point topology; "right" is the subject's own).
MESH_RIGHT_EYE_OUTER = 33
MESH_RIGHT_EYE_INNER = 133
MESH_LEFT_EYE_INNER = 362
MESH_LEFT_EYE_OUTER = 263
MESH_NOSE_TIP = 1
MESH_NOSE_BASE = 2  # subnasale: where the nose meets the upper lip
# dlib's shape_predictor_5_face_landmarks order: the subject's left eye outer and inner corner
# (image right), right eye outer and inner corner (image left), base of the nose.
DLIB5_MESH_INDICES = (
    MESH_LEFT_EYE_OUTER,
    MESH_LEFT_EYE_INNER,
    MESH_RIGHT_EYE_OUTER,
    MESH_RIGHT_EYE_INNER,
    MESH_NOSE_BASE,
)
_MESH_FILE = "face_landmark.tflite"
_MESH_INPUT = 192
# face_landmark_front_cpu.pbtxt: the detection box, rotated to level the eyes, made square on
# its long side and scaled by 1.5 is the region the mesh model sees (input range [0, 1]).
_MESH_ROI_SCALE = 1.5


class FaceMesh:
    """MediaPipe's face-mesh model: 468 landmarks for one detected face.

    ``refine_landmarks(rgb, detection)`` gives (468, 2) float32 (x, y) frame pixels; ``run``
    also gives the depth column and the model's face-presence probability in [0, 1].
    Calls are serialised by a lock, so one instance may be shared between threads.
    """

    def __init__(self, num_threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = str(resources.files("facegate.face") / "data" / _MESH_FILE)
        self._interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        self._points = next(o["index"] for o in outputs if o["shape"][-1] == 468 * 3)
        self._presence = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self._lock = threading.Lock()

    @staticmethod
    def roi_transform(detection: Detection) -> np.ndarray:
        """(2, 3) similarity mapping frame pixels to the 192x192 mesh input for a detection."""
        right, left = detection.landmarks[0], detection.landmarks[1]
        angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
        x0, y0, x1, y1 = detection.box
        side = max(x1 - x0, y1 - y0) * _MESH_ROI_SCALE
        centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
        scale = _MESH_INPUT / max(side, 1e-6)
        cos, sin = np.cos(-angle) * scale, np.sin(-angle) * scale
        matrix = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
        matrix[:, 2] = _MESH_INPUT / 2.0 - matrix[:, :2] @ centre
        return matrix

    def run(self, rgb: np.ndarray, detection: Detection) -> tuple[np.ndarray, float]:
        """(468, 3) float32 (x, y frame pixels; z relative depth) and face presence in [0, 1]."""
        rgb = as_rgb(rgb)
        matrix = self.roi_transform(detection)
        crop = cv2.warpAffine(
            rgb,
            matrix,
            (_MESH_INPUT, _MESH_INPUT),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        tensor = (crop.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input, tensor)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._points).reshape(468, 3).copy()
            logit = float(self._interpreter.get_tensor(self._presence).reshape(-1)[0])
        back = cv2.invertAffineTransform(matrix)
        points = np.empty((468, 3), dtype=np.float32)
        points[:, :2] = raw[:, :2] @ back[:, :2].T + back[:, 2]
        # z is in input pixels like x; bring it to frame pixels with the same scale.
        points[:, 2] = raw[:, 2] * float(np.hypot(*back[:, 0]))
        presence = 1.0 / (1.0 + np.exp(-np.clip(logit, -_RAW_SCORE_CLIP, _RAW_SCORE_CLIP)))
        return points, float(presence)

    def refine_landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """(468, 2) float32 mesh landmarks of ``detection`` in frame pixels."""
        return self.run(rgb, detection)[0][:, :2].copy()


def dlib_five_points(mesh: np.ndarray) -> np.ndarray:
    """dlib's 5 landmarks (see DLIB5_MESH_INDICES) from (468, 2+) mesh points: (5, 2) float32."""
    return np.asarray(mesh, dtype=np.float32)[list(DLIB5_MESH_INDICES), :2].copy()
