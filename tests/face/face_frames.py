"""Frame and file builders for the face-pipeline tests (synthetic backgrounds, PNG, EXIF)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A face-free (H, W, 3) uint8 frame: smooth colour blobs plus a little noise."""
    rng = np.random.default_rng(seed)
    blobs = rng.integers(40, 200, (6, 8, 3)).astype(np.uint8)
    base = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    noise = rng.integers(-8, 8, (height, width, 3), dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, image: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """A copy of ``frame`` with ``image`` resized to size x size at (x, y)."""
    out = frame.copy()
    interpolation = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_LINEAR
    out[y : y + size, x : x + size] = cv2.resize(image, (size, size), interpolation=interpolation)
    return out


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def flat_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real, valid 8-bit RGB PNG of one flat colour, built without any big array.

    Each row is compressed after a full flush, so every row's deflate block is the same bytes
    and the stream is that block repeated; the Adler-32 checksum is computed over all rows.
    """
    row = b"\x00" + bytes(rgb) * width
    packer = zlib.compressobj(6)
    first = packer.compress(row) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(row) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush(zlib.Z_FINISH)[:-4]  # the final empty block, without its checksum
    checksum = 1
    for _ in range(height):
        checksum = zlib.adler32(row, checksum)
    idat = first + block * (height - 1) + end + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def exif_segment(orientation: int) -> bytes:
    """A JPEG APP1 segment holding a big-endian EXIF block with only the Orientation tag."""
    entry = struct.pack(">HHIH2x", 0x0112, 3, 1, orientation)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\x00" * 4
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    """Encode RGB as JPEG and insert an EXIF Orientation tag right after SOI."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    data = encoded.tobytes()
    return data[:2] + exif_segment(orientation) + data[2:]
