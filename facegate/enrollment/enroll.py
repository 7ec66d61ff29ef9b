"""Enrollment: images (or camera frames) to a deduplicated, embedded gallery, all or nothing.

Each image is detected, aligned and quality-gated by the face pipeline; the good crops are
embedded with one model call, near-identical ones dropped (same content, or cosine similarity
of the embeddings at or above ``EnrollmentConfig.duplicate_similarity``), the best kept up to
``max_gallery``, and the user, images and embeddings stored by the registry in one transaction.
The gallery stores each face as a model-independent canonical chip with its landmarks, from
which any later model's crop is re-derived. Fewer than ``min_images`` good crops stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from facegate.config import FacegateConfig
from facegate.enrollment.names import clean_name
from facegate.errors import EnrollmentError, StorageError
from facegate.face.types import AlignedFace, FaceResult, Reason
from facegate.storage.files import encode_crop
from facegate.storage.records import NewGalleryImage
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.config import FaceConfig
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class FaceSource(Protocol):
    """What enrollment needs of the face pipeline."""

    config: FaceConfig

    def process(self, rgb: np.ndarray) -> FaceResult:
        """An (H, W, 3) uint8 RGB image to an aligned face or the reason there is none."""
        ...


@dataclass(frozen=True)
class Candidate:
    """A good face: the model's aligned ``crop`` ((S, S, 3) uint8 RGB), its quality in [0, 1],
    its source, and what the gallery stores: the canonical ``chip`` ((C, C, 3) uint8 RGB) with
    the face's (6, 2) ``landmarks`` in chip pixels (``facegate.face.align.canonical_chip``)."""

    source: str
    crop: np.ndarray
    quality: float
    chip: np.ndarray
    landmarks: np.ndarray


def face_candidate(source: str, rgb: np.ndarray, face: AlignedFace) -> Candidate:
    """A Candidate of a face the pipeline found in the (H, W, 3) uint8 RGB image ``rgb``."""
    from facegate.face.align import canonical_chip
    from facegate.face.detect import as_rgb

    chip, landmarks = canonical_chip(as_rgb(rgb), face.detection.landmarks)
    return Candidate(source, face.crop, face.quality.score, chip, landmarks)


@dataclass(frozen=True)
class Rejection:
    """An input that gave no usable face, and why (a face-pipeline reason or a file error)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """An input dropped as near-identical to a kept one (cosine similarity in [-1, 1])."""

    source: str
    duplicate_of: str
    similarity: float


@dataclass(frozen=True)
class LookAlike:
    """An existing user whose gallery the new images resemble: mean Siamese score in [0, 1]."""

    name: str
    score: float


@dataclass(frozen=True)
class EnrollmentReport:
    """What an enrollment (or a gallery addition) did; ``stored`` False means nothing was."""

    name: str
    model_sha256: str
    accepted: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    # Good images left out because the gallery would exceed max_gallery (lowest quality first).
    capped: tuple[str, ...] = ()
    lookalikes: tuple[LookAlike, ...] = ()
    warnings: tuple[str, ...] = ()
    user_id: int | None = None
    image_ids: tuple[int, ...] = ()
    stored: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "name": self.name,
            "user_id": self.user_id,
            "stored": self.stored,
            "model_sha256": self.model_sha256,
            "accepted": list(self.accepted),
            "image_ids": list(self.image_ids),
            "rejected": [{"source": r.source, "reason": r.reason} for r in self.rejected],
            "duplicates": [
                {"source": d.source, "duplicate_of": d.duplicate_of, "similarity": d.similarity}
                for d in self.duplicates
            ],
            "capped": list(self.capped),
            "lookalikes": [{"name": a.name, "score": a.score} for a in self.lookalikes],
            "warnings": list(self.warnings),
        }


class TooFewImagesError(EnrollmentError):
    """Fewer good images than the minimum; ``report`` says what happened to each input."""

    def __init__(self, message: str, report: EnrollmentReport) -> None:
        """Keep the report so the CLI can show every rejection."""
        super().__init__(message)
        self.report = report


@dataclass
class _Prepared:
    images: list[NewGalleryImage] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)


def expand_sources(sources: Iterable[str | Path]) -> tuple[list[Path], list[Rejection]]:
    """Files as given, and image files (by suffix, sorted) found under directories."""
    files: list[Path] = []
    missing: list[Rejection] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                missing.append(Rejection(str(path), "no images in directory"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(Rejection(str(path), "file not found"))
    return files, missing


def face_from_file(pipeline: FaceSource, path: Path) -> Candidate | Reason:
    """One image file through the face pipeline: its Candidate, or why there is none."""
    from facegate.face.image_io import ImageDecodeError, load_image

    try:
        # Decoded here, not by process_file: the canonical chip is cut from this image.
        rgb = load_image(path, max_side=pipeline.config.max_image_side)
    except ImageDecodeError as err:
        logger.warning("image refused: %s", err)
        return err.reason
    result = pipeline.process(rgb)
    if result.face is None:
        return result.reason or Reason.NO_FACE
    return face_candidate(str(path), rgb, result.face)


def faces_from_files(
    pipeline: FaceSource, files: Sequence[Path]
) -> tuple[list[Candidate], list[Rejection]]:
    """Run each file through the face pipeline: good faces and named rejections."""
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    for path in files:
        found = face_from_file(pipeline, path)
        if isinstance(found, Candidate):
            candidates.append(found)
        else:
            rejected.append(Rejection(str(path), found.value))
            logger.info("enrollment image %s rejected: %s", path.name, found.value)
    return candidates, rejected


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _prepare(
    model: LoadedModel,
    candidates: Sequence[Candidate],
    config: FacegateConfig,
    existing: np.ndarray | None = None,
    existing_hashes: frozenset[str] = frozenset(),
    room: int | None = None,
) -> _Prepared:
    """Encode, embed and deduplicate candidates, best quality first, up to ``room`` images."""
    out = _Prepared()
    if not candidates:
        return out
    ordered = sorted(candidates, key=lambda c: -c.quality)
    embeddings = np.asarray(model.embed(np.stack([c.crop for c in ordered])), dtype=np.float32)
    unit = _unit(embeddings)
    kept_unit = [] if existing is None or not len(existing) else list(_unit(existing))
    kept_labels = ["(existing gallery)"] * len(kept_unit)
    seen: dict[str, str] = dict.fromkeys(existing_hashes, "(existing gallery)")
    limit = config.enrollment.max_gallery if room is None else room
    threshold = config.enrollment.duplicate_similarity
    for cand, vector, direction in zip(ordered, embeddings, unit, strict=True):
        encoded = encode_crop(cand.chip)
        if encoded.sha256 in seen:
            out.duplicates.append(Duplicate(cand.source, seen[encoded.sha256], 1.0))
            continue
        if kept_unit:
            sims = np.asarray(kept_unit) @ direction
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                out.duplicates.append(Duplicate(cand.source, kept_labels[best], float(sims[best])))
                continue
        if len(out.images) >= limit:
            out.capped.append(cand.source)
            continue
        seen[encoded.sha256] = cand.source
        kept_unit.append(direction)
        kept_labels.append(cand.source)
        out.sources.append(cand.source)
        out.images.append(
            NewGalleryImage(
                sha256=encoded.sha256,
                png=encoded.png,
                quality=float(cand.quality),
                source=Path(cand.source).name or cand.source,
                embedding=vector,
                landmarks=cand.landmarks,
            )
        )
    return out


def find_lookalikes(
    registry: Registry,
    model: LoadedModel,
    embeddings: np.ndarray,
    threshold: float,
    exclude_user_id: int | None = None,
) -> list[LookAlike]:
    """Users whose gallery scores, on average against ``embeddings`` (N, D), above threshold.

    The score of two galleries is the mean Siamese head score over all their image pairs.
    """
    if not len(embeddings):
        return []
    matrix = registry.gallery_matrix(model.space, active_only=False)
    found = []
    for user_id, user in matrix.users.items():
        if user_id == exclude_user_id:
            continue
        theirs = matrix.rows_of(user_id)
        scores = model.head.pair_scores(embeddings[:, None, :], theirs[None, :, :])
        mean = float(np.mean(scores))
        if mean > threshold:
            found.append(LookAlike(user.name, round(mean, 4)))
    return sorted(found, key=lambda a: -a.score)


def register_model(registry: Registry, model: LoadedModel) -> list[str]:
    """Make sure the registry knows the model that embeds; warn when it is not the active one.

    The first model ever used becomes the active one.
    """
    manifest = model.manifest
    registry.register_model(manifest.sha256, manifest.name, model.path, manifest.metrics)
    active = registry.active_model()
    if active is None:
        registry.activate_model(manifest.sha256, why="first model used for enrollment")
        return []
    if active.sha256 != manifest.sha256:
        warning = (
            f"model {manifest.sha256[:12]} is not the registry's active model "
            f"{active.sha256[:12]}; the door will not use these images until the galleries "
            "are re-embedded"
        )
        logger.warning("%s", warning)
        return [warning]
    return []


def _warn_lookalikes(name: str, lookalikes: Sequence[LookAlike]) -> None:
    for alike in lookalikes:
        logger.warning(
            "the gallery of %r is close to that of %r (mean score %.3f): a duplicate or look-alike",
            name,
            alike.name,
            alike.score,
        )


def enroll_faces(
    registry: Registry,
    model: LoadedModel,
    name: str,
    candidates: Sequence[Candidate],
    config: FacegateConfig,
    display_name: str | None = None,
    rejected: Sequence[Rejection] = (),
) -> EnrollmentReport:
    """Store a new user from already-detected crops (see ``enroll``); all or nothing."""
    try:
        clean = clean_name(name)
    except ValueError as err:
        raise EnrollmentError(f"invalid name: {err}") from err
    if registry.find_user(clean) is not None:
        raise EnrollmentError(f"a user named {clean!r} already exists; use 'gallery add'")
    sha = model.space
    prepared = _prepare(model, candidates, config)
    embeddings = np.stack([i.embedding for i in prepared.images]) if prepared.images else None
    lookalikes = (
        find_lookalikes(registry, model, embeddings, config.enrollment.lookalike_score)
        if embeddings is not None
        else []
    )
    report = EnrollmentReport(
        name=clean,
        model_sha256=model.manifest.sha256,
        accepted=tuple(prepared.sources),
        rejected=tuple(rejected),
        duplicates=tuple(prepared.duplicates),
        capped=tuple(prepared.capped),
        lookalikes=tuple(lookalikes),
    )
    minimum = config.enrollment.min_images
    if len(prepared.images) < minimum:
        raise TooFewImagesError(
            f"{clean!r}: {len(prepared.images)} usable image(s), at least {minimum} needed; "
            "nothing was stored",
            report,
        )
    warnings = register_model(registry, model)
    _warn_lookalikes(clean, lookalikes)
    try:
        user = registry.create_user_with_gallery(
            clean, prepared.images, sha, display_name=display_name
        )
    except StorageError as err:
        raise EnrollmentError(f"{clean!r}: not stored: {err}") from err
    image_ids = tuple(img.id for img in registry.gallery(clean))
    logger.info("enrolled user %d with %d images", user.id, len(prepared.images))
    return replace(
        report, warnings=tuple(warnings), user_id=user.id, image_ids=image_ids, stored=True
    )


def enroll(
    registry: Registry,
    pipeline: FaceSource,
    model: LoadedModel,
    name: str,
    sources: Iterable[str | Path],
    config: FacegateConfig,
    display_name: str | None = None,
) -> EnrollmentReport:
    """Enroll a new user from image files and directories; all or nothing.

    Raises TooFewImagesError (with the report) when fewer than ``min_images`` usable,
    distinct images remain, and EnrollmentError when the name is taken or invalid.
    """
    try:
        clean_name(name)
    except ValueError as err:
        raise EnrollmentError(f"invalid name: {err}") from err
    files, missing = expand_sources(sources)
    candidates, rejected = faces_from_files(pipeline, files)
    return enroll_faces(
        registry, model, name, candidates, config, display_name, [*missing, *rejected]
    )


def add_faces(
    registry: Registry,
    model: LoadedModel,
    name: str,
    candidates: Sequence[Candidate],
    config: FacegateConfig,
    rejected: Sequence[Rejection] = (),
) -> EnrollmentReport:
    """Add crops to an existing user's gallery (deduplicated against it, capped); one commit."""
    user = registry.get_user(name)
    sha = model.space
    gallery = registry.gallery(user.name)
    stored = registry.get_embeddings(sha, [img.id for img in gallery])
    existing = np.stack(list(stored.values())) if stored else None
    room = max(0, config.enrollment.max_gallery - len(gallery))
    prepared = _prepare(
        model, candidates, config, existing, frozenset(i.sha256 for i in gallery), room
    )
    lookalikes: list[LookAlike] = []
    if prepared.images:
        new = np.stack([i.embedding for i in prepared.images])
        lookalikes = find_lookalikes(
            registry, model, new, config.enrollment.lookalike_score, exclude_user_id=user.id
        )
    report = EnrollmentReport(
        name=user.name,
        model_sha256=model.manifest.sha256,
        accepted=tuple(prepared.sources),
        rejected=tuple(rejected),
        duplicates=tuple(prepared.duplicates),
        capped=tuple(prepared.capped),
        lookalikes=tuple(lookalikes),
        user_id=user.id,
    )
    if not prepared.images:
        raise TooFewImagesError(f"{user.name!r}: no new usable image; nothing was stored", report)
    warnings = register_model(registry, model)
    _warn_lookalikes(user.name, lookalikes)
    try:
        added = registry.add_gallery_images(user.name, prepared.images, sha)
    except StorageError as err:
        raise EnrollmentError(f"{user.name!r}: not stored: {err}") from err
    return replace(
        report,
        warnings=tuple(warnings),
        image_ids=tuple(img.id for img in added),
        stored=True,
    )


def add_images(
    registry: Registry,
    pipeline: FaceSource,
    model: LoadedModel,
    name: str,
    sources: Iterable[str | Path],
    config: FacegateConfig,
) -> EnrollmentReport:
    """Add image files and directories to an existing user's gallery."""
    registry.get_user(name)  # an unknown user fails before any image is processed
    files, missing = expand_sources(sources)
    candidates, rejected = faces_from_files(pipeline, files)
    return add_faces(registry, model, name, candidates, config, [*missing, *rejected])
