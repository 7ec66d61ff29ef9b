"""Decoding untrusted bytes: every bad-image kind gives an image or a named reason."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from face_frames import flat_png, jpeg_with_orientation, png_chunk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facegate.errors import FacegateError
from facegate.face.image_io import (
    ImageDecodeError,
    check_size,
    decode_image,
    image_header,
    load_image,
)
from facegate.face.types import Reason


def encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    """cv2.imencode to bytes (BGR or grey input, as OpenCV wants)."""
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    return data.tobytes()


def reason_of(data: bytes, **kwargs: int) -> Reason:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, **kwargs)
    assert isinstance(info.value, FacegateError)
    assert "\n" not in str(info.value)
    return info.value.reason


@pytest.fixture(scope="module")
def jpeg_bytes(face_paths: list[Path]) -> bytes:
    """A real LFW JPEG file's bytes."""
    return face_paths[0].read_bytes()


def test_real_jpeg_decodes_to_rgb(jpeg_bytes: bytes, face_paths: list[Path]) -> None:
    rgb = decode_image(jpeg_bytes)
    assert rgb.shape == (250, 250, 3) and rgb.dtype == np.uint8
    bgr = cv2.imread(str(face_paths[0]))
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
    np.testing.assert_array_equal(load_image(face_paths[0]), rgb)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp", ".tiff", ".gif"])
def test_every_supported_format_decodes(ext: str) -> None:
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[:, :, 2] = 200  # red in BGR
    data = encode(ext, bgr)
    assert image_header(data)[1:] == (30, 20)
    rgb = decode_image(data)
    assert rgb.shape == (20, 30, 3)
    # Red stays red (RGB order), within the lossy codecs' error.
    assert rgb[10, 15, 0] > 150 and rgb[10, 15, 2] < 60


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_grayscale_becomes_three_equal_channels(ext: str) -> None:
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    rgb = decode_image(encode(ext, grey))
    assert rgb.shape == (8, 25, 3)
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 1])
    np.testing.assert_array_equal(rgb[:, :, 1], rgb[:, :, 2])


def test_rgba_png_is_composited_on_white() -> None:
    bgra = np.zeros((10, 10, 4), np.uint8)
    bgra[:, :5] = (0, 0, 255, 255)  # opaque red on the left
    bgra[:, 5:] = (0, 0, 0, 0)  # fully transparent black on the right
    rgb = decode_image(encode(".png", bgra))
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[0, 9], [255, 255, 255])


def test_half_transparent_png_blends_with_white() -> None:
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 3] = 128
    rgb = decode_image(encode(".png", bgra))
    assert np.all(np.abs(rgb.astype(int) - 127) <= 1)


def test_16_bit_png_is_scaled_to_8_bits() -> None:
    deep = np.zeros((4, 6, 3), np.uint16)
    deep[:, :3] = 65535
    deep[:, 3:] = 32768
    data = encode(".png", deep)
    assert data[24] == 16  # IHDR bit depth: really a 16-bit file
    rgb = decode_image(data)
    assert rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[0, 5].tolist() == [128, 128, 128]


@pytest.mark.parametrize(
    ("orientation", "top_is_white", "shape"),
    [(1, False, (20, 40)), (6, True, (40, 20)), (8, False, (40, 20)), (3, False, (20, 40))],
)
def test_exif_orientation_is_applied(orientation: int, top_is_white: bool, shape: tuple) -> None:
    # A white band on the left edge: orientation 6 (rotate 90 deg clockwise) puts it on top,
    # 8 (counter-clockwise) at the bottom, 3 (180 deg) on the right.
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :8] = 255
    out = decode_image(jpeg_with_orientation(rgb, orientation))
    assert out.shape[:2] == shape
    assert (out[0].mean() > 200) == top_is_white
    if orientation == 3:
        assert out[:, -1].mean() > 200 and out[:, 0].mean() < 50


def test_exif_rotated_face_comes_out_upright(face: np.ndarray, detector) -> None:
    # The camera stored the face lying on its side plus "rotate 90 deg clockwise to view".
    sideways = np.ascontiguousarray(np.rot90(face, k=1))
    upright = decode_image(jpeg_with_orientation(sideways, 6))
    assert upright.shape == face.shape
    (found,) = detector.detect(upright)
    right_eye, left_eye = found.landmarks[0], found.landmarks[1]
    assert abs(right_eye[1] - left_eye[1]) < 6 and right_eye[0] < left_eye[0]


def test_one_pixel_images_decode() -> None:
    for ext in (".png", ".jpg"):
        assert decode_image(encode(ext, np.full((1, 1, 3), 77, np.uint8))).shape == (1, 1, 3)


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A real 12000x12000 flat-colour PNG (0.7 MB, 432 MB decoded)."""
    return flat_png(12000, 12000, (40, 120, 200))


def test_flat_png_builder_writes_valid_pngs() -> None:
    rgb = decode_image(flat_png(300, 200, (40, 120, 200)))
    assert rgb.shape == (200, 300, 3)
    assert (rgb == np.array([40, 120, 200], np.uint8)).all()


def test_12000_square_png_is_refused_before_decoding(huge_png: bytes) -> None:
    assert image_header(huge_png) == ("png", 12000, 12000)
    # 144 Mpx is over the default pixel budget 16384**2 / 4 (67 Mpx).
    assert reason_of(huge_png) is Reason.TOO_LARGE


def test_size_rule() -> None:
    check_size(16384, 1000, 16384)
    check_size(8192, 8192, 16384)
    for width, height in [(16385, 10), (10, 16385), (8193, 8192)]:
        with pytest.raises(ImageDecodeError) as info:
            check_size(width, height, 16384)
        assert info.value.reason is Reason.TOO_LARGE


def test_max_side_is_honoured() -> None:
    data = encode(".png", np.zeros((300, 200, 3), np.uint8))
    assert decode_image(data, max_side=600).shape == (300, 200, 3)
    assert reason_of(data, max_side=299) is Reason.TOO_LARGE
    assert reason_of(data, max_side=400) is Reason.TOO_LARGE  # 60000 px > 400**2 / 4


def test_png_bomb_header_is_refused() -> None:
    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")
    assert reason_of(bomb) is Reason.TOO_LARGE


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def test_jpeg_bomb_header_is_refused(jpeg_bytes: bytes) -> None:
    sof = jpeg_bytes.find(b"\xff\xc0")
    assert sof > 0
    bomb = _patch(jpeg_bytes, sof + 5, struct.pack(">HH", 60000, 60000))
    assert image_header(bomb)[1:] == (60000, 60000)
    assert reason_of(bomb) is Reason.TOO_LARGE


def test_gif_bmp_webp_tiff_bomb_headers_are_refused() -> None:
    small = np.zeros((8, 8, 3), np.uint8)
    gif = _patch(encode(".gif", small), 6, struct.pack("<HH", 60000, 60000))
    bmp = _patch(encode(".bmp", small), 18, struct.pack("<ii", 50000, -50000))
    webp_lossless = encode(".webp", small, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert webp_lossless[12:16] == b"VP8L"
    bits = (16383 & 0x3FFF) | ((16383 & 0x3FFF) << 14)
    webp = _patch(webp_lossless, 21, struct.pack("<I", bits))
    for data in (gif, bmp, webp):
        assert reason_of(data, max_side=16384) is Reason.TOO_LARGE
    webp_lossy = encode(".webp", small, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert webp_lossy[12:16] == b"VP8 "
    assert image_header(webp_lossy)[1:] == (8, 8)
    assert image_header(encode(".tiff", small))[1:] == (8, 8)


def test_truncated_jpeg_is_unreadable(jpeg_bytes: bytes) -> None:
    # Decision: a cut-off JPEG is refused, never returned half grey.
    for cut in (len(jpeg_bytes) // 2, len(jpeg_bytes) - 2, 400, 20, 3):
        assert reason_of(jpeg_bytes[:cut]) is Reason.UNREADABLE


def test_truncated_png_is_unreadable() -> None:
    data = encode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    for cut in (len(data) // 2, len(data) - 12, 30, 10):
        assert reason_of(data[:cut]) is Reason.UNREADABLE


def test_jpeg_with_trailing_bytes_still_decodes(jpeg_bytes: bytes) -> None:
    # Some phones append data after the end-of-image marker.
    assert decode_image(jpeg_bytes + b"SEFT" * 100).shape == (250, 250, 3)


def test_text_named_jpg_and_empty_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (text, empty):
        with pytest.raises(ImageDecodeError) as info:
            load_image(path)
        assert info.value.reason is Reason.UNREADABLE
        assert str(path) in str(info.value)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError) as info:
        load_image(tmp_path / "nope.png")
    assert info.value.reason is Reason.UNREADABLE


def test_unsupported_format_is_unreadable() -> None:
    ppm = encode(".ppm", np.zeros((4, 4, 3), np.uint8))
    assert reason_of(ppm) is Reason.UNREADABLE


def test_corrupt_scan_data_never_crashes(jpeg_bytes: bytes) -> None:
    sos = jpeg_bytes.find(b"\xff\xda")
    garbled = jpeg_bytes[: sos + 20] + bytes(range(256)) * 20 + b"\xff\xd9"
    try:
        assert decode_image(garbled).shape[2] == 3
    except ImageDecodeError as err:
        assert err.reason is Reason.UNREADABLE


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        image = decode_image(data)
    except ImageDecodeError as err:
        assert err.reason in (Reason.UNREADABLE, Reason.TOO_LARGE)
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


_SMALL_FILES = [
    encode(ext, np.random.default_rng(1).integers(0, 255, (24, 32, 3), np.uint8))
    for ext in (".png", ".jpg", ".webp", ".bmp", ".gif", ".tiff")
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SMALL_FILES),
    st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=8),
    st.integers(0, 4096),
)
def test_mutated_real_images_never_crash(
    data: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    mutated = bytearray(data)
    for offset, value in flips:
        if offset < len(mutated):
            mutated[offset] = value
    mutated = mutated[: max(0, len(mutated) - cut)] if cut % 3 == 0 else mutated
    try:
        image = decode_image(bytes(mutated))
    except ImageDecodeError as err:
        assert err.reason in (Reason.UNREADABLE, Reason.TOO_LARGE)
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
