"""LFW protocol parsing on the real files, tree indexing, and import-lfw (tarball and tree)."""

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from facegate.errors import DataError
from facegate.training import lfw

PEOPLE = ["Aaron_Eckhart", "Abdullah_Gul", "Alvaro_Uribe"]


def test_pairs_txt_has_ten_folds(lfw_protocol: Path, lfw_images: Path) -> None:
    pairs = lfw.parse_pairs(lfw_protocol / "pairs.txt")
    assert len(pairs) == 6000 and pairs.folds == 10
    for fold in range(10):
        in_fold = [p for p in pairs.pairs if p.fold == fold]
        assert len(in_fold) == 600
        assert all(p.genuine for p in in_fold[:300])
        assert not any(p.genuine for p in in_fold[300:])
    first = pairs.pairs[0]
    assert (first.name_a, first.index_a, first.index_b) == ("Abel_Pacheco", 1, 4)
    assert first.paths(lfw_images)[1] == lfw_images / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"
    assert all(p.is_file() for p in first.paths(lfw_images))


def test_dev_files_counts_and_disjoint_people(lfw_protocol: Path) -> None:
    train = lfw.parse_pairs(lfw_protocol / "pairsDevTrain.txt")
    test = lfw.parse_pairs(lfw_protocol / "pairsDevTest.txt")
    assert (len(train), len(test)) == (2200, 1000)
    assert sum(p.genuine for p in test.pairs) == 500 and test.folds == 1
    dev_test_people = lfw.protocol_people(lfw_protocol / "pairsDevTest.txt")
    assert len(dev_test_people) == 963  # the shared README's figure
    assert not dev_test_people & lfw.protocol_people(lfw_protocol / "pairsDevTrain.txt")


def test_exclusion_index_matches_readme(lfw_images: Path, lfw_protocol: Path) -> None:
    excluded = lfw.protocol_people(lfw_protocol / "pairsDevTest.txt")
    index = lfw.index_tree(lfw_images, exclude=excluded)
    assert (index.people, index.images) == (4786, 10492)
    assert (index.multi_image_people, index.multi_image_images) == (1262, 6968)
    assert not excluded & set(index.identities)


def test_identity_checksum_is_order_free() -> None:
    expected = hashlib.sha256(b"Ann\nBob").hexdigest()
    assert lfw.identity_checksum(["Bob", "Ann"]) == expected
    assert lfw.identity_checksum(["Ann", "Bob", "Ann"]) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2\nA 1 2\n", "promises 4 pairs"),
        ("1\nA 1\nB 1 C 2\n", "genuine pair line"),
        ("1\nA 1 2\nB 1 B 2\n", "same person twice"),
        ("1\nA 1 x\nB 1 C 2\n", "expected integers"),
        ("", "empty"),
    ],
)
def test_malformed_protocol_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        lfw.parse_pairs(path)
    assert "\n" not in str(info.value)


def _tarball(lfw_images: Path, dest: Path, top: str = "lfw") -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        for person in PEOPLE:
            tar.add(lfw_images / person, arcname=f"{top}/{person}")
    return dest


def test_import_tarball(lfw_images: Path, tmp_path: Path) -> None:
    tgz = _tarball(lfw_images, tmp_path / "lfw.tgz")
    report = lfw.import_lfw(tgz, tmp_path / "out")
    expected = sum(len(list((lfw_images / p).iterdir())) for p in PEOPLE)
    assert (report.people, report.images, report.usable_negatives) == (3, expected, expected)
    assert not report.complete
    index = lfw.index_tree(tmp_path / "out")
    assert sorted(index.identities) == PEOPLE
    record = json.loads((tmp_path / "out" / lfw.IMPORT_RECORD).read_text())
    assert record["images"] == expected


def test_import_tree_with_md5sums(lfw_images: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for person in PEOPLE[:2]:
        (src / person).mkdir(parents=True)
        for img in (lfw_images / person).iterdir():
            (src / person / img.name).write_bytes(img.read_bytes())
    first = next((src / PEOPLE[0]).iterdir())
    digest = hashlib.md5(first.read_bytes()).hexdigest()
    md5 = src / "MD5SUMS"
    md5.write_text(f"{digest}  {PEOPLE[0]}/{first.name}\n")
    report = lfw.import_lfw(src, tmp_path / "out")
    assert report.md5_checked == 1 and report.people == 2
    md5.write_text(f"{'0' * 32}  {PEOPLE[0]}/{first.name}\n")
    with pytest.raises(DataError, match="MD5 mismatch"):
        lfw.import_lfw(src, tmp_path / "out2")


def test_import_refuses_traversal_and_links(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"\xff\xd8\xff" + b"0" * 10
        info = tarfile.TarInfo("lfw/../../escaped.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="unsafe member path"):
        lfw.import_lfw(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.jpg").exists()

    linked = tmp_path / "link.tgz"
    with tarfile.open(linked, "w:gz") as tar:
        info = tarfile.TarInfo("lfw/A/A_0001.jpg")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="link"):
        lfw.import_lfw(linked, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_import_rejects_wrong_layout(tmp_path: Path) -> None:
    (tmp_path / "src" / "Ann").mkdir(parents=True)
    (tmp_path / "src" / "Ann" / "holiday.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(DataError, match=r"not LFW layout|no LFW layout"):
        lfw.import_lfw(tmp_path / "src", tmp_path / "out")
    with pytest.raises(DataError, match="not found"):
        lfw.import_lfw(tmp_path / "missing.tgz", tmp_path / "out")
