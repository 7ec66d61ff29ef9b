"""Decode untrusted image bytes into (H, W, 3) uint8 RGB arrays, never crashing on bad input.

The image's declared size is read from its header before anything is decoded, so that a
small file declaring a huge image (a decompression bomb) is refused without allocating it.
The rule: refuse with ``Reason.TOO_LARGE`` when a side exceeds ``max_side`` or the pixel count
exceeds ``max_side**2 // 4`` (16384 gives 16384 px per side and 67 Mpx, e.g. 8192x8192; a
12000x12000 image is refused, a 50 Mpx phone photo is accepted).

Accepted formats are those whose header we can read: JPEG, PNG, WebP, BMP, GIF (first frame)
and TIFF (first page). Anything else, an empty or truncated file, or text named ``.jpg`` gives
``Reason.UNREADABLE``. A truncated JPEG (no end-of-image marker after the scan data) or PNG
(no IEND chunk) is refused rather than returned half grey: a face cut in half is worse than a
clear "unreadable" for verification. JPEG EXIF orientation is applied (OpenCV's imdecode does
it for JPEG with IMREAD_COLOR; checked by the tests); alpha is composited on white; 16-bit
and float images are scaled to 8 bits; grey images are replicated to three channels.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cv2
import numpy as np

from facegate.errors import FacegateError
from facegate.face.types import Reason

logger = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 16384

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])


class ImageDecodeError(FacegateError):
    """The bytes are not a usable image; ``reason`` says why (UNREADABLE or TOO_LARGE)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _unreadable(message: str) -> ImageDecodeError:
    return ImageDecodeError(Reason.UNREADABLE, message)


def _jpeg_header(data: bytes) -> tuple[int, int, bool]:
    """(width, height, complete) of a JPEG; ``complete`` is False when the EOI marker is missing."""
    pos = 2
    size: tuple[int, int] | None = None
    n = len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise _unreadable("corrupt JPEG: bad marker")
        while pos < n and data[pos] == 0xFF:  # fill bytes may pad any marker
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == 0xD9:
            break
        if pos + 2 > n:
            break
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2:
            raise _unreadable("corrupt JPEG: bad segment length")
        if marker in _SOF_MARKERS and size is None:
            if pos + 7 > n:
                break
            height, width = struct.unpack_from(">HH", data, pos + 3)
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows up to EOI
            if size is None:
                raise _unreadable("corrupt JPEG: scan before frame header")
            # 0xFF in scan data is always stuffed (FF 00) or a marker, so EOI cannot occur
            # by accident; progressive files hold several scans and end with one EOI.
            return size[0], size[1], data.find(b"\xff\xd9", pos + length) >= 0
        pos += length
    if size is None:
        raise _unreadable("truncated JPEG: no frame header")
    return size[0], size[1], False


def _tiff_header(data: bytes) -> tuple[int, int]:
    endian = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(endian + "I", data, 4)
    (count,) = struct.unpack_from(endian + "H", data, ifd)
    width = height = 0
    for i in range(count):
        tag, kind, _, value = struct.unpack_from(endian + "HHI4s", data, ifd + 2 + 12 * i)
        if tag not in (256, 257):
            continue
        if kind == 3:  # SHORT, left-justified in the value field
            (number,) = struct.unpack_from(endian + "H", value)
        elif kind == 4:  # LONG
            (number,) = struct.unpack_from(endian + "I", value)
        else:
            raise _unreadable("corrupt TIFF: bad size tag")
        if tag == 256:
            width = number
        else:
            height = number
    return width, height


def _webp_header(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _unreadable("corrupt WebP: bad VP8 start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _unreadable("corrupt WebP: bad VP8L signature")
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _unreadable("corrupt WebP: unknown chunk")


def image_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) declared by the header; raise ImageDecodeError if unreadable."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            if data[12:16] != b"IHDR":
                raise _unreadable("corrupt PNG: no IHDR")
            width, height = struct.unpack_from(">II", data, 16)
            return "png", width, height
        if data[:3] == b"\xff\xd8\xff":
            width, height, complete = _jpeg_header(data)
            if not complete:
                raise _unreadable("truncated JPEG: no end-of-image marker")
            return "jpeg", width, height
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack_from("<HH", data, 6)
            return "gif", width, height
        if data[:2] == b"BM":
            (dib_size,) = struct.unpack_from("<I", data, 14)
            if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
                width, height = struct.unpack_from("<HH", data, 18)
            else:
                width, height = struct.unpack_from("<ii", data, 18)
            return "bmp", abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            width, height = _webp_header(data)
            return "webp", width, height
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            width, height = _tiff_header(data)
            return "tiff", width, height
    except (struct.error, IndexError) as err:
        raise _unreadable("truncated image header") from err
    if not data:
        raise _unreadable("empty file")
    raise _unreadable("not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)")


def check_size(width: int, height: int, max_side: int) -> None:
    """Raise ImageDecodeError(TOO_LARGE) unless both sides <= max_side and w*h <= max_side**2//4."""
    if width <= 0 or height <= 0:
        raise _unreadable(f"image declares an empty size {width}x{height}")
    if width > max_side or height > max_side:
        raise ImageDecodeError(
            Reason.TOO_LARGE, f"image is {width}x{height}, a side exceeds {max_side} px"
        )
    if width * height > max_side * max_side // 4:
        raise ImageDecodeError(
            Reason.TOO_LARGE,
            f"image is {width}x{height}, more than {max_side * max_side // 4} pixels",
        )


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any OpenCV decode result (grey/BGR/BGRA, 8/16-bit or float) to (H, W, 3) uint8 RGB."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels in (2, 4):
        # Composite on white: transparent areas of a cut-out photo should not read as black.
        alpha = image[:, :, -1:].astype(np.float32) / 255.0
        colour = image[:, :, :-1].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        image = np.rint(colour).astype(np.uint8)
        channels -= 1
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_BGR2RGB)


def _png_complete(data: bytes) -> bool:
    return data.rfind(b"IEND") >= 8


def decode_image(data: bytes, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Decode image bytes to (H, W, 3) uint8 RGB; raise ImageDecodeError with a Reason."""
    data = bytes(data)
    fmt, width, height = image_header(data)
    check_size(width, height, max_side)
    if fmt == "png" and not _png_complete(data):
        raise _unreadable("truncated PNG: no IEND chunk")
    buffer = np.frombuffer(data, dtype=np.uint8)
    # JPEG: IMREAD_COLOR applies the EXIF orientation and converts grey and CMYK; it has no
    # alpha or 16-bit depth. Other formats: IMREAD_UNCHANGED keeps alpha to composite on white.
    flags = cv2.IMREAD_COLOR if fmt == "jpeg" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error as err:
        raise _unreadable(f"corrupt {fmt.upper()}: {str(err).strip().splitlines()[-1]}") from err
    if image is None or image.size == 0:
        raise _unreadable(f"corrupt {fmt.upper()}: the decoder refused it")
    # The header may lie (e.g. a GIF frame larger than its screen); check what came out too.
    check_size(image.shape[1], image.shape[0], max_side)
    return _to_rgb8(image)


def load_image(path: str | Path, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Read and decode an image file to (H, W, 3) uint8 RGB; raise ImageDecodeError."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise _unreadable(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        return decode_image(data, max_side=max_side)
    except ImageDecodeError as err:
        raise ImageDecodeError(err.reason, f"{path}: {err}") from err
