"""LFW: the official protocol files, identity-labelled image trees, and importing the dataset.

Protocol files (README of LFW, section 3c): ``pairs.txt`` starts with ``10 300`` and holds 10
folds of 300 genuine then 300 impostor pairs; ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` start
with ``N`` and hold N genuine then N impostor pairs. A genuine line is ``name i j``, an impostor
line ``name1 i name2 j``; image ``i`` of ``name`` is ``<root>/<name>/<name>_<iiii>.jpg``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from facegate.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# The complete official release; a smaller tree is accepted as a subset (with a warning).
LFW_PEOPLE = 5749
LFW_IMAGES = 13233
IMPORT_RECORD = "lfw_import.json"
# An LFW image file name: ``<Name>_<iiii>.jpg``.
LFW_FILE = re.compile(r"^(?P<name>.+)_(?P<index>\d{4})\.jpg$")


@dataclass(frozen=True)
class Pair:
    """One protocol pair: image ``index_a`` of ``name_a`` against ``index_b`` of ``name_b``.

    Indices are LFW's 1-based image numbers; ``fold`` is the protocol fold (0-based; 0 for a
    single-list file such as pairsDevTest.txt).
    """

    name_a: str
    index_a: int
    name_b: str
    index_b: int
    fold: int

    @property
    def genuine(self) -> bool:
        """True when both images show the same person."""
        return self.name_a == self.name_b

    def paths(self, root: Path) -> tuple[Path, Path]:
        """The two image paths under an LFW tree ``root``."""
        return image_path(root, self.name_a, self.index_a), image_path(
            root, self.name_b, self.index_b
        )


@dataclass(frozen=True)
class PairList:
    """The pairs of one protocol file, in file order, and how many folds the file defines."""

    pairs: tuple[Pair, ...]
    folds: int
    source: str

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.pairs)

    @property
    def people(self) -> frozenset[str]:
        """Every person named in the file."""
        return frozenset(n for p in self.pairs for n in (p.name_a, p.name_b))


def image_path(root: Path, name: str, index: int) -> Path:
    """``<root>/<name>/<name>_<iiii>.jpg`` (LFW's naming, index 1-based)."""
    return Path(root) / name / f"{name}_{index:04d}.jpg"


def _ints(tokens: list[str], path: Path, line_no: int) -> list[int]:
    try:
        values = [int(t) for t in tokens]
    except ValueError as err:
        raise DataError(f"{path}:{line_no}: expected integers, got {' '.join(tokens)!r}") from err
    if any(v < 1 for v in values):
        raise DataError(f"{path}:{line_no}: LFW image numbers start at 1")
    return values


def _parse_line(tokens: list[str], path: Path, line_no: int, genuine: bool, fold: int) -> Pair:
    if genuine:
        if len(tokens) != 3:
            raise DataError(f"{path}:{line_no}: a genuine pair line is 'name i j'")
        i, j = _ints(tokens[1:], path, line_no)
        return Pair(tokens[0], i, tokens[0], j, fold)
    if len(tokens) != 4:
        raise DataError(f"{path}:{line_no}: an impostor pair line is 'name1 i name2 j'")
    i, j = _ints([tokens[1], tokens[3]], path, line_no)
    if tokens[0] == tokens[2]:
        raise DataError(f"{path}:{line_no}: impostor pair names the same person twice")
    return Pair(tokens[0], i, tokens[2], j, fold)


def parse_pairs(path: Path) -> PairList:
    """Parse pairs.txt (10 folds) or pairsDevTrain/DevTest.txt (one list); DataError if bad."""
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError as err:
        raise DataError(f"{path}: protocol file not found") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read protocol file: {err}") from err
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty protocol file")
    header = _ints(lines[0], path, 1) if lines[0] else []
    if len(header) == 2:
        folds, per_class = header
    elif len(header) == 1:
        folds, per_class = 1, header[0]
    else:
        raise DataError(f"{path}:1: header must be 'N' or 'FOLDS N'")
    expected = folds * 2 * per_class
    body = lines[1:]
    if len(body) != expected:
        raise DataError(
            f"{path}: header promises {expected} pairs ({folds} x 2 x {per_class}), "
            f"file has {len(body)}"
        )
    pairs = []
    for k, tokens in enumerate(body):
        fold, within = divmod(k, 2 * per_class)
        pairs.append(_parse_line(tokens, path, k + 2, within < per_class, fold))
    return PairList(pairs=tuple(pairs), folds=folds, source=path.name)


def protocol_people(path: Path) -> set[str]:
    """Every person named in a protocol pairs file."""
    return set(parse_pairs(path).people)


def identity_checksum(names: Iterable[str]) -> str:
    """sha256 hex of the sorted, newline-joined identity names (stable exclusion record)."""
    joined = "\n".join(sorted(set(names)))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IdentityIndex:
    """An identity-labelled image tree: identity name -> its image paths (sorted)."""

    root: Path
    identities: dict[str, tuple[Path, ...]]
    excluded: frozenset[str] = field(default_factory=frozenset)

    @property
    def people(self) -> int:
        """Number of identities kept."""
        return len(self.identities)

    @property
    def images(self) -> int:
        """Number of images kept."""
        return sum(len(v) for v in self.identities.values())

    @property
    def multi_image_people(self) -> int:
        """Identities with at least two images (those that can form genuine pairs)."""
        return sum(1 for v in self.identities.values() if len(v) >= 2)

    @property
    def multi_image_images(self) -> int:
        """Images of identities with at least two images."""
        return sum(len(v) for v in self.identities.values() if len(v) >= 2)

    def summary(self) -> dict[str, int]:
        """Counts as a JSON-ready dict."""
        return {
            "people": self.people,
            "images": self.images,
            "people_with_2_or_more": self.multi_image_people,
            "images_of_people_with_2_or_more": self.multi_image_images,
            "excluded_people": len(self.excluded),
        }


def index_tree(root: Path, exclude: Iterable[str] = ()) -> IdentityIndex:
    """Index ``<root>/<identity>/<images>``, leaving out identities in ``exclude``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    excluded = frozenset(exclude)
    identities: dict[str, tuple[Path, ...]] = {}
    dropped: set[str] = set()
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        if person.name in excluded:
            dropped.add(person.name)
            continue
        images = tuple(
            sorted(
                f for f in person.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
        )
        if images:
            identities[person.name] = images
    if not identities:
        raise DataError(f"{root}: no identity folders with images (<identity>/<images>)")
    logger.info(
        "indexed %s: %d people, %d images (%d excluded people present)",
        root,
        len(identities),
        sum(len(v) for v in identities.values()),
        len(dropped),
    )
    return IdentityIndex(root=root, identities=identities, excluded=frozenset(dropped))


@dataclass(frozen=True)
class ImportReport:
    """What ``import_lfw`` found and installed."""

    dest: Path
    people: int
    images: int
    multi_image_people: int
    usable_negatives: int
    complete: bool
    md5_checked: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "dest": str(self.dest),
            "people": self.people,
            "images": self.images,
            "people_with_2_or_more": self.multi_image_people,
            "usable_negatives": self.usable_negatives,
            "complete": self.complete,
            "md5_checked": self.md5_checked,
        }


def _is_tarball(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tgz", ".tar.gz", ".tar"))


def _safe_extract(tarball: Path, into: Path) -> None:
    """Extract regular files and folders only; refuse absolute paths, ``..`` and links."""
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                parts = Path(m.name).parts
                if m.name.startswith(("/", "\\")) or ".." in parts or Path(m.name).is_absolute():
                    raise DataError(f"{tarball}: unsafe member path {m.name!r} (refused)")
                if not (m.isfile() or m.isdir()):
                    raise DataError(f"{tarball}: member {m.name!r} is a link or device (refused)")
            # The "data" filter re-checks paths and strips modes as a second line of defence.
            tar.extractall(into, members=members, filter="data")
    except tarfile.TarError as err:
        raise DataError(f"{tarball}: not a readable tar archive: {err}") from err
    except OSError as err:
        raise DataError(f"{tarball}: cannot extract: {err}") from err


def _find_tree(root: Path) -> Path:
    """The folder holding the person folders: ``root`` itself or its single sub-folder."""
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    looks_like_people = any(LFW_FILE.match(f.name) for d in subdirs[:20] for f in d.iterdir())
    if looks_like_people:
        return root
    for name in ("lfw", "lfw-deepfunneled", "lfw_funneled"):
        if (root / name).is_dir():
            return root / name
    if len(subdirs) == 1 and any(p.is_dir() for p in subdirs[0].iterdir()):
        return subdirs[0]
    if not subdirs:
        raise DataError(f"{root}: no LFW layout found (<Name>/<Name>_0001.jpg)")
    return root  # _check_layout names the first file that does not fit


def _check_md5sums(base: Path, md5sums: Path) -> int:
    """Check every file listed in an MD5SUMS file that exists under ``base``; return count."""
    checked = 0
    for line_no, line in enumerate(md5sums.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if len(parts) != 2:
            continue
        digest, name = parts[0].lower(), parts[1].lstrip("*")
        target = base / name
        if not target.is_file():
            continue
        actual = hashlib.md5(target.read_bytes(), usedforsecurity=False).hexdigest()
        if actual != digest:
            raise DataError(f"{target}: MD5 mismatch ({md5sums}:{line_no})")
        checked += 1
    return checked


def _check_layout(tree: Path) -> dict[str, list[Path]]:
    """Validate ``<Name>/<Name>_<iiii>.jpg`` names and JPEG magic; return name -> images."""
    people: dict[str, list[Path]] = {}
    for person in sorted(tree.iterdir()):
        if not person.is_dir():
            continue
        images = sorted(person.iterdir())
        for img in images:
            match = LFW_FILE.match(img.name)
            if not img.is_file() or match is None or match["name"] != person.name:
                raise DataError(f"{img}: not LFW layout (expected {person.name}_<iiii>.jpg)")
            with img.open("rb") as fh:
                if fh.read(3) != b"\xff\xd8\xff":
                    raise DataError(f"{img}: not a JPEG file")
        if images:
            people[person.name] = images
    if not people:
        raise DataError(f"{tree}: no person folders found")
    return people


def import_lfw(src: Path, dest: Path) -> ImportReport:
    """Check an LFW tarball or extracted tree and install it as ``<dest>/<Name>/<images>``.

    A tarball is extracted safely (no absolute or ``..`` paths, no links); a tree is copied.
    An MD5SUMS file beside the tarball or inside the tree is checked for the files it lists.
    """
    src, dest = Path(src), Path(dest)
    if not src.exists():
        raise DataError(f"{src}: not found")
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"{dest}: already exists and is not empty")
    dest.parent.mkdir(parents=True, exist_ok=True)
    md5_checked = 0
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".lfw-import-") as tmp:
        staging = Path(tmp) / "staging"
        if _is_tarball(src):
            if (src.parent / "MD5SUMS").is_file():
                md5_checked += _check_md5sums(src.parent, src.parent / "MD5SUMS")
            staging.mkdir()
            _safe_extract(src, staging)
            tree = _find_tree(staging)
            if (tree / "MD5SUMS").is_file():
                md5_checked += _check_md5sums(tree, tree / "MD5SUMS")
        elif src.is_dir():
            tree = _find_tree(src)
            for candidate in {src / "MD5SUMS", src / "protocol" / "MD5SUMS", tree / "MD5SUMS"}:
                if candidate.is_file():
                    md5_checked += _check_md5sums(candidate.parent, candidate)
        else:
            raise DataError(f"{src}: expected lfw.tgz / lfw-deepfunneled.tgz or an extracted tree")
        people = _check_layout(tree)
        installed = Path(tmp) / "installed"
        installed.mkdir()
        for name in people:
            if tree.is_relative_to(Path(tmp)):
                os.replace(tree / name, installed / name)
            else:
                shutil.copytree(tree / name, installed / name)
        dest.mkdir(parents=True, exist_ok=True)
        for name in people:
            os.replace(installed / name, dest / name)
    n_images = sum(len(v) for v in people.values())
    report = ImportReport(
        dest=dest,
        people=len(people),
        images=n_images,
        multi_image_people=sum(1 for v in people.values() if len(v) >= 2),
        # Any LFW image can serve as an impostor (the seed's "negative") for any other person.
        usable_negatives=n_images,
        complete=(len(people), n_images) == (LFW_PEOPLE, LFW_IMAGES),
        md5_checked=md5_checked,
    )
    if not report.complete:
        logger.warning(
            "%s holds %d people / %d images; the full LFW release has %d / %d",
            src,
            report.people,
            report.images,
            LFW_PEOPLE,
            LFW_IMAGES,
        )
    record = {"source": str(src.resolve()), **report.as_dict()}
    (dest / IMPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return report
