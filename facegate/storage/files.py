"""The content-addressed crop store: gallery face images (canonical chips, or legacy crops
aligned for one model) as private, lossless PNG files.

A crop lives at ``<data_dir>/gallery/ab/abcdef....png`` where the name is the sha256 of the
PNG bytes, so nothing about the person (least of all their name) appears in a path, and the
same crop is stored once. Files are 0600, directories 0700, written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.errors import StorageError
from facegate.storage.db import FILE_MODE, ensure_private_dir

logger = logging.getLogger(__name__)

GALLERY_DIR = "gallery"
_SUFFIX = ".png"


@dataclass(frozen=True)
class EncodedCrop:
    """A crop encoded as PNG with its sha256 (hex) and store path relative to the data dir."""

    sha256: str
    png: bytes
    relative_path: str


def encode_crop(crop: np.ndarray) -> EncodedCrop:
    """Encode an (S, S, 3) uint8 RGB crop as PNG and compute where the store keeps it."""
    import cv2  # lazy: storage users that never touch crops do not pay for OpenCV

    array = np.asarray(crop)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise StorageError(f"a crop must be (S, S, 3) uint8 RGB, got {array.shape} {array.dtype}")
    ok, buf = cv2.imencode(_SUFFIX, cv2.cvtColor(array, cv2.COLOR_RGB2BGR))
    if not ok:
        raise StorageError("cannot encode crop as PNG")
    png = buf.tobytes()
    sha = hashlib.sha256(png).hexdigest()
    return EncodedCrop(sha256=sha, png=png, relative_path=relative_path_for(sha))


def relative_path_for(sha256: str) -> str:
    """The store path of a crop, relative to the data directory, from its hex sha256."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise StorageError(f"not a sha256 hex digest: {sha256!r}")
    return f"{GALLERY_DIR}/{sha256[:2]}/{sha256}{_SUFFIX}"


class CropStore:
    """Crops under ``<data_dir>/gallery``: write atomically, read back, delete, list."""

    def __init__(self, data_dir: Path) -> None:
        """Use ``data_dir`` (created 0700 on the first write)."""
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / GALLERY_DIR

    def path_of(self, relative_path: str) -> Path:
        """Absolute path of a store-relative path; refuses anything outside the store."""
        path = (self.data_dir / relative_path).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StorageError(f"crop path outside the gallery store: {relative_path!r}")
        return path

    def write(self, crop: EncodedCrop) -> bool:
        """Store a crop unless already there; True when this call created the file."""
        target = self.path_of(crop.relative_path)
        if target.exists():
            # Refresh the age of a crop left by a crash: the orphan sweep's age guard must now
            # protect it until the transaction that will reference it commits.
            with contextlib.suppress(OSError):
                os.utime(target)
            return False
        ensure_private_dir(self.data_dir)
        ensure_private_dir(self.root)
        ensure_private_dir(target.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(crop.png)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write crop {target}: {err.strerror}") from err
        return True

    def read(self, relative_path: str) -> np.ndarray:
        """Load a stored crop as (S, S, 3) uint8 RGB."""
        import cv2

        path = self.path_of(relative_path)
        data = np.fromfile(path, dtype=np.uint8) if path.exists() else None
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
        if image is None:
            raise StorageError(f"crop missing or unreadable: {relative_path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def delete(self, relative_path: str) -> bool:
        """Remove a crop file; True when it existed. Empty shard directories are removed."""
        path = self.path_of(relative_path)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise StorageError(f"cannot delete crop {path}: {err.strerror}") from err
        with contextlib.suppress(OSError):  # the shard may still hold other crops
            path.parent.rmdir()
        return True

    def iter_files(self) -> Iterator[tuple[str, float]]:
        """Every file in the store as (path relative to the data dir, mtime in epoch seconds)."""
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if not shard.is_dir():
                continue
            for path in sorted(shard.iterdir()):
                if path.is_file():
                    rel = path.relative_to(self.data_dir).as_posix()
                    yield rel, path.stat().st_mtime
