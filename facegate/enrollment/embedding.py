"""Gallery embedding: each stored gallery image to the crop a model wants, then to vectors.

A gallery image is a canonical chip with its landmarks, re-aligned for each model by the
same similarity fit the face pipeline applies to a photo, or a legacy crop (schema 0001)
aligned for the model that enrolled it, which other models get resized: right only for a
model with that crop size and template. One function, ``embed_missing``, embeds what a
model lacks, for the daemon (skip an unreadable file and count it: the door keeps working)
and for promotion and rollback (fail: never switch to a model missing part of the gallery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from facegate.errors import StorageError
from facegate.storage.records import GalleryImage, Landmarks
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.face.types import AlignSpec
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)

# Gallery images read and embedded per model call.
EMBED_BATCH = 64
# Images enrolled while ``embed_missing`` embeds are embedded in further rounds, up to this many.
MAX_EMBED_ROUNDS = 5


class OnUnreadable(StrEnum):
    """What embedding does with a gallery file that is missing or cannot be decoded."""

    SKIP = "skip"  # log it, count it in the result, leave it unembedded, go on
    FAIL = "fail"  # raise StorageError: nothing is stored


@dataclass(frozen=True)
class GalleryEmbedding:
    """Embeddings of gallery images by one model: image id -> (D,) float32 ``vectors``;
    ``checks`` holds the ``check`` result of each embedded crop; ``unreadable`` the ids
    skipped; ``legacy`` the ids that were legacy crops (resized, not re-aligned)."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    checks: dict[int, str | None] = field(default_factory=dict)
    unreadable: tuple[int, ...] = ()
    legacy: tuple[int, ...] = ()


def fit_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """An (s, s, 3) uint8 crop resized to (size, size, 3) (returned as is when s == size)."""
    if crop.shape[0] == size and crop.shape[1] == size:
        return crop
    import cv2

    inter = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=inter)


def fit_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """(N, s, s, 3) uint8 crops resized to (N, size, size, 3) (as is when s == size)."""
    if crops.shape[1] == size:
        return crops
    return np.stack([fit_crop(crop, size) for crop in crops])


def model_crop(image: np.ndarray, landmarks: Landmarks | None, spec: AlignSpec) -> np.ndarray:
    """The (S, S, 3) uint8 RGB crop ``spec`` asks for, S = spec.size, from a stored gallery
    image: a canonical chip is aligned on its landmarks (the face pipeline's own transform,
    see ``facegate.face.align.canonical_chip``); a legacy crop (None) is only resized.
    Raises ValueError for degenerate landmarks."""
    if landmarks is None:
        return fit_crop(image, spec.size)
    from facegate.face.align import align_face

    return align_face(image, np.asarray(landmarks, dtype=np.float64), spec)


def read_model_crop(registry: Registry, image: GalleryImage, spec: AlignSpec) -> np.ndarray:
    """``model_crop`` of a stored gallery image; StorageError when it cannot be read or aligned."""
    try:
        return model_crop(registry.read_crop(image), image.landmarks, spec)
    except (StorageError, ValueError) as err:
        raise StorageError(f"gallery image {image.id} (user {image.user_id}): {err}") from err


def embed_gallery(
    registry: Registry,
    model: LoadedModel,
    images: Sequence[GalleryImage],
    on_unreadable: OnUnreadable = OnUnreadable.FAIL,
    check: Callable[[np.ndarray], str | None] | None = None,
) -> GalleryEmbedding:
    """Embed stored gallery images with ``model`` (nothing is stored); ``check`` is run on
    each model crop (the refresh's quality gate) and its results returned with the vectors."""
    spec = model.manifest.align_spec
    vectors: dict[int, np.ndarray] = {}
    checks: dict[int, str | None] = {}
    unreadable: list[int] = []
    for start in range(0, len(images), EMBED_BATCH):
        readable, crops = [], []
        for image in images[start : start + EMBED_BATCH]:
            try:
                crops.append(read_model_crop(registry, image, spec))
            except StorageError as err:
                if on_unreadable is OnUnreadable.FAIL:
                    raise
                # One lost file must not take the door down; the image stays unembedded.
                logger.error("%s; left unembedded", err)
                unreadable.append(image.id)
                continue
            readable.append(image)
            if check is not None:
                checks[image.id] = check(crops[-1])
        if readable:
            batch = np.asarray(model.embed(np.stack(crops)), np.float32)
            vectors.update({img.id: vec for img, vec in zip(readable, batch, strict=True)})
    legacy = tuple(i.id for i in images if i.legacy and i.id in vectors)
    if legacy:
        logger.warning(
            "%d gallery images are legacy crops aligned for the model that enrolled them, only "
            "resized for model %s; re-enroll their users to store re-alignable images",
            len(legacy),
            model.label,
        )
    return GalleryEmbedding(vectors, checks, tuple(unreadable), legacy)


def embed_missing(
    registry: Registry, model: LoadedModel, on_unreadable: OnUnreadable
) -> GalleryEmbedding:
    """Embed and store every gallery image ``model`` has no embedding of yet.

    Images enrolled meanwhile are picked up in further rounds (up to MAX_EMBED_ROUNDS);
    StorageError when they keep arriving faster, or, under ``OnUnreadable.FAIL``, when a
    file cannot be read (the images embedded before stay stored).
    """
    sha = model.space
    vectors: dict[int, np.ndarray] = {}
    unreadable: set[int] = set()
    legacy: list[int] = []
    for _ in range(MAX_EMBED_ROUNDS):
        missing = [i for i in registry.images_without_embedding(sha) if i.id not in unreadable]
        if not missing:
            break
        done = embed_gallery(registry, model, missing, on_unreadable)
        registry.put_embeddings(sha, done.vectors)
        vectors.update(done.vectors)
        unreadable.update(done.unreadable)
        legacy.extend(done.legacy)
    else:
        if any(i.id not in unreadable for i in registry.images_without_embedding(sha)):
            raise StorageError("gallery images keep arriving faster than they can be embedded")
    if vectors:
        logger.info("embedded %d gallery images with model %s", len(vectors), model.label)
    return GalleryEmbedding(vectors, {}, tuple(sorted(unreadable)), tuple(legacy))
