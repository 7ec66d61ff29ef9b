"""The crop store: lossless PNG, content-addressed paths, private modes, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import StorageError
from facegate.storage.files import CropStore, encode_crop, relative_path_for


def _crop(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def test_round_trip_is_lossless_and_addressed_by_content(tmp_path: Path) -> None:
    store = CropStore(tmp_path / "data")
    encoded = encode_crop(_crop())
    assert encoded.relative_path == f"gallery/{encoded.sha256[:2]}/{encoded.sha256}.png"
    assert store.write(encoded) is True
    assert store.write(encoded) is False  # already stored: same content, same file
    np.testing.assert_array_equal(store.read(encoded.relative_path), _crop())
    assert encode_crop(_crop()).sha256 == encoded.sha256
    assert encode_crop(_crop(1)).sha256 != encoded.sha256


def test_files_are_0600_and_directories_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = CropStore(tmp_path / "data")
        encoded = encode_crop(_crop())
        store.write(encoded)
    finally:
        os.umask(old)
    path = store.path_of(encoded.relative_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, store.root, store.data_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_delete_removes_the_file_and_its_empty_shard(tmp_path: Path) -> None:
    store = CropStore(tmp_path / "data")
    encoded = encode_crop(_crop())
    store.write(encoded)
    assert store.delete(encoded.relative_path) is True
    assert store.delete(encoded.relative_path) is False
    assert list(store.root.iterdir()) == []
    assert list(store.iter_files()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "gallery/../registry.db", "/etc/passwd"])
def test_paths_outside_the_store_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StorageError):
        CropStore(tmp_path / "data").path_of(bad)


def test_only_hex_digests_make_paths() -> None:
    with pytest.raises(StorageError):
        relative_path_for("../" + "a" * 61)
    with pytest.raises(StorageError):
        encode_crop(np.zeros((4, 4), np.uint8))
