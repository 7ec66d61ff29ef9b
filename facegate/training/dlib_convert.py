"""Convert dlib's face-recognition ResNet (as written by dlib's ``net_to_xml``) to Keras weights.

``tools/dlib_export/dlib_to_xml`` turns ``dlib_face_recognition_resnet_model_v1.dat`` into
XML; ``parse_dlib_xml`` reads that, ``load_dlib_weights`` checks it layer by layer against
``facegate.model.resnet`` and folds each ``affine`` (gamma, beta) into the convolution before
it. The ``dlib_*`` helpers run dlib itself (``dlib-bin`` and ``face_recognition_models``, both
developer tools, never run-time dependencies) to cut reference chips and descriptors that the
converted tower must reproduce.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegate.errors import DataError, ModelError

logger = logging.getLogger(__name__)

DLIB_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
# sha256 of DLIB_MODEL_FILE as shipped by face_recognition_models 0.3.0 (dlib.net's file).
DLIB_MODEL_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
DLIB_LICENCE = "CC0 1.0 (public domain): dlib_face_recognition_resnet_model_v1 by Davis King"
# dlib's chip geometry for this model (face_recognition and dlib's Python API use these).
CHIP_SIZE = 150
CHIP_PADDING = 0.25

_ATTR = re.compile(r"(\w+)='([^']*)'")


@dataclass(frozen=True)
class DlibConv:
    """One dlib ``con`` layer and the ``affine`` after it.

    ``filters`` (out, in, rows, cols) float32 as dlib stores them; ``bias``, ``gamma``,
    ``beta`` (out,); ``stride`` and ``padding`` in pixels (same along both axes).
    """

    filters: np.ndarray
    bias: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    stride: int
    padding: int

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Keras Conv2D weights of ``affine(con(x))``: kernel (rows, cols, in, out), bias (out,)."""
        gamma = self.gamma.astype(np.float64)
        kernel = self.filters.astype(np.float64) * gamma[:, None, None, None]
        bias = self.bias.astype(np.float64) * gamma + self.beta.astype(np.float64)
        return kernel.transpose(2, 3, 1, 0).astype(np.float32), bias.astype(np.float32)


@dataclass(frozen=True)
class DlibNet:
    """The parsed network, input to output: convolutions, fc (in, out) matrix, input means."""

    convs: tuple[DlibConv, ...]
    fc: np.ndarray
    input_mean_rgb: tuple[float, float, float]
    input_size: int


def _elements(path: Path) -> Iterator[tuple[str, dict[str, str], np.ndarray | None]]:
    """(tag, attributes, numbers or None) for each layer element, in file (output-first) order."""
    tag: str | None = None
    attrs: dict[str, str] = {}
    numbers: list[str] = []
    with open(path, encoding="ascii") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if tag is not None:
                if line.startswith("</"):
                    yield tag, attrs, np.array(" ".join(numbers).split(), dtype=np.float32)
                    tag, numbers = None, []
                else:
                    numbers.append(line)
                continue
            # <net>, <layer ...> wrappers carry no parameters; structure is checked by shape.
            if not line.startswith("<") or line.startswith(("<layer", "</layer", "<net", "</net")):
                continue
            name = line[1:].split()[0].rstrip(">").rstrip("/")
            if "/>" in line:
                yield name, dict(_ATTR.findall(line)), None
            else:
                tag, attrs = name, dict(_ATTR.findall(line))


def parse_dlib_xml(path: Path) -> DlibNet:
    """Read dlib's ``net_to_xml`` output of the face ResNet; DataError if it is not that net."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (build it with tools/dlib_export)")
    layers = list(_elements(path))
    layers.reverse()  # dlib writes the loss layer first; work input to output
    convs: list[DlibConv] = []
    pending: tuple[dict[str, str], np.ndarray] | None = None
    fc: np.ndarray | None = None
    mean: tuple[float, float, float] | None = None
    size = 0
    for tag, attrs, values in layers:
        if tag == "input_rgb_image_sized":
            mean = (float(attrs["r"]), float(attrs["g"]), float(attrs["b"]))
            size = int(attrs["nr"])
        elif tag == "con":
            if pending is not None:
                raise DataError(f"{path}: convolution without an affine layer after it")
            pending = (attrs, values)
        elif tag == "affine_con":
            if pending is None or values is None:
                raise DataError(f"{path}: affine layer without a convolution before it")
            convs.append(_make_conv(pending[0], pending[1], values, path))
            pending = None
        elif tag == "fc_no_bias":
            outputs = int(attrs["num_outputs"])
            fc = values.reshape(-1, outputs)
    if fc is None or mean is None or pending is not None:
        raise DataError(f"{path}: not dlib's face ResNet (missing fc, input or affine layer)")
    logger.info("parsed %s: %d convolutions, fc %s", path, len(convs), fc.shape)
    return DlibNet(convs=tuple(convs), fc=fc, input_mean_rgb=mean, input_size=size)


def _make_conv(
    attrs: dict[str, str], values: np.ndarray, affine: np.ndarray, path: Path
) -> DlibConv:
    out = int(attrs["num_filters"])
    rows, cols = int(attrs["nr"]), int(attrs["nc"])
    if attrs["stride_y"] != attrs["stride_x"] or attrs["padding_y"] != attrs["padding_x"]:
        raise DataError(f"{path}: anisotropic convolution is not supported")
    n_filters = values.size - out
    if n_filters % (out * rows * cols) or affine.size != 2 * out:
        raise DataError(f"{path}: convolution parameter count {values.size} does not fit")
    channels = n_filters // (out * rows * cols)
    return DlibConv(
        filters=values[:n_filters].reshape(out, channels, rows, cols),
        bias=values[n_filters:],
        gamma=affine[:out],
        beta=affine[out:],
        stride=int(attrs["stride_y"]),
        padding=int(attrs["padding_y"]),
    )


def load_dlib_weights(tower: Any, net: DlibNet) -> Any:
    """Set ``tower`` (``make_dlib_resnet()``) to ``net``'s weights; ModelError on any mismatch."""
    from facegate.model.resnet import DLIB_MEAN_RGB, FC_LAYER, NUM_CONVS, conv_name

    if len(net.convs) != NUM_CONVS:
        raise ModelError(f"dlib net has {len(net.convs)} convolutions, expected {NUM_CONVS}")
    if not np.allclose(net.input_mean_rgb, DLIB_MEAN_RGB, atol=1e-3):
        raise ModelError(f"dlib net input means {net.input_mean_rgb} != {DLIB_MEAN_RGB}")
    for index, conv in enumerate(net.convs):
        layer = tower.get_layer(conv_name(index))
        kernel, bias = conv.folded()
        expected_padding = conv.filters.shape[2] // 2 if conv.stride == 1 else 0
        if (
            layer.strides != (conv.stride, conv.stride)
            or conv.padding != expected_padding
            or tuple(layer.kernel.shape) != kernel.shape
        ):
            raise ModelError(
                f"{layer.name}: dlib {conv.filters.shape} stride {conv.stride} padding "
                f"{conv.padding} does not match Keras {tuple(layer.kernel.shape)} {layer.strides}"
            )
        layer.set_weights([kernel, bias])
    fc = tower.get_layer(FC_LAYER)
    if tuple(fc.kernel.shape) != net.fc.shape:
        raise ModelError(f"fc {net.fc.shape} does not match Keras {tuple(fc.kernel.shape)}")
    fc.set_weights([net.fc])
    return tower


def convert_dlib_xml(xml_path: Path) -> Any:
    """A new ``make_dlib_resnet()`` tower carrying the weights of dlib's XML dump."""
    from facegate.model.resnet import make_dlib_resnet

    net = parse_dlib_xml(xml_path)
    return load_dlib_weights(make_dlib_resnet(net.input_size), net)


# --- dlib itself: reference chips and descriptors (developer tools only) ---------------------


def dlib_models_dir() -> Path:
    """The ``models/`` folder of the ``face_recognition_models`` package; DataError if absent."""
    try:
        import face_recognition_models
    except ImportError as err:
        raise DataError(
            "face_recognition_models is not installed (pip install face_recognition_models)"
        ) from err
    return Path(face_recognition_models.__file__).resolve().parent / "models"


@dataclass
class DlibReference:
    """dlib's detector, 5-point shape predictor and ResNet, loaded once."""

    detector: Any
    predictor: Any
    encoder: Any

    @classmethod
    def load(cls) -> DlibReference:
        """Load from ``face_recognition_models`` with ``dlib`` (dlib-bin); DataError if absent."""
        try:
            import dlib
        except ImportError as err:
            raise DataError("dlib is not installed (pip install dlib-bin)") from err
        models = dlib_models_dir()
        return cls(
            detector=dlib.get_frontal_face_detector(),
            predictor=dlib.shape_predictor(str(models / SHAPE_PREDICTOR_FILE)),
            encoder=dlib.face_recognition_model_v1(str(models / DLIB_MODEL_FILE)),
        )

    def shape(self, rgb: np.ndarray) -> Any | None:
        """dlib's 5-point shape of the face nearest the image centre, or None if none found."""
        import dlib

        faces = list(self.detector(rgb, 1))
        if not faces:
            return None
        cy, cx = rgb.shape[0] / 2.0, rgb.shape[1] / 2.0
        face = min(faces, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        rect = dlib.rectangle(face.left(), face.top(), face.right(), face.bottom())
        return self.predictor(rgb, rect)

    def chip(self, rgb: np.ndarray, shape: Any) -> np.ndarray:
        """dlib's aligned (150, 150, 3) uint8 RGB chip for ``shape`` (padding 0.25)."""
        import dlib

        return np.asarray(dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING))

    def chip_transform(self, shape: Any) -> np.ndarray:
        """(2, 3) float64 affine map from image pixels to dlib chip pixels for ``shape``."""
        import dlib

        details = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        rect, angle = details.rect, details.angle
        # dlib samples chip pixel (c, r) at rect's centre + R(angle) * scaled offset.
        width = rect.right() - rect.left()
        height = rect.bottom() - rect.top()
        sx, sy = width / (details.cols - 1), height / (details.rows - 1)
        cos, sin = np.cos(angle), np.sin(angle)
        centre = np.array([(rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0])
        # chip -> image: p = centre + R @ diag(sx, sy) @ (q - chip_centre)
        forward = np.array([[cos * sx, -sin * sy], [sin * sx, cos * sy]])
        chip_centre = np.array([(details.cols - 1) / 2.0, (details.rows - 1) / 2.0])
        inverse = np.linalg.inv(forward)
        return np.hstack([inverse, (chip_centre - inverse @ centre)[:, None]])

    def descriptors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """dlib's 128-d descriptors of (150, 150, 3) uint8 chips: (N, 128) float32."""
        if not len(chips):
            return np.zeros((0, 128), np.float32)
        out = self.encoder.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.asarray([np.asarray(d) for d in out], dtype=np.float32)


def max_abs_diff(tower: Any, chips: np.ndarray, reference: np.ndarray) -> float:
    """Largest |Keras - dlib| descriptor component over (N, 150, 150, 3) uint8 ``chips``."""
    from facegate.model.resnet import PREPROCESSING

    x = chips.astype(np.float32) * PREPROCESSING.scale + np.asarray(
        PREPROCESSING.offset, np.float32
    )
    ours = np.asarray(tower(x, training=False), dtype=np.float32)
    return float(np.max(np.abs(ours - reference)))


# --- the landmark template that makes facegate's crops match dlib's chips ---------------------


@dataclass(frozen=True)
class TemplateFit:
    """A fitted template ((K, 2) in [0, 1] of the chip, Landmark order) and its spread.

    ``spread`` is the median distance, in chip pixels, of a face's mapped landmark from the
    template point (K,); ``faces`` how many images both detectors found a face in.
    """

    template: tuple[tuple[float, float], ...]
    spread: tuple[float, ...]
    faces: int


def chip_landmarks(
    rgb: np.ndarray, reference: DlibReference, detector: Any, points: int = 4
) -> np.ndarray | None:
    """facegate's landmarks of the central face mapped into dlib's chip, in [0, 1]: (K, 2).

    ``detector`` has ``detect(rgb) -> list[Detection]`` (a FacePipeline or FaceDetector);
    None when either dlib or facegate finds no face.
    """
    from facegate.face.pipeline import nearest_centre

    shape = reference.shape(rgb)
    detections = detector.detect(rgb)
    if shape is None or not detections:
        return None
    det = nearest_centre(detections, *rgb.shape[:2])
    matrix = reference.chip_transform(shape)
    mapped = det.landmarks[:points].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    # Chip pixel centres run 0..149; the template's [0, 1] spans the crop's edges (0..150).
    return (mapped + 0.5) / CHIP_SIZE


def fit_template(samples: Sequence[np.ndarray]) -> TemplateFit:
    """Robust (per-coordinate median) template of (K, 2) chip landmark sets."""
    stack = np.stack(samples)
    template = np.median(stack, axis=0)
    spread = np.median(np.linalg.norm(stack - template, axis=2), axis=0) * CHIP_SIZE
    return TemplateFit(
        template=tuple((round(float(x), 4), round(float(y), 4)) for x, y in template),
        spread=tuple(round(float(s), 2) for s in spread),
        faces=len(samples),
    )
