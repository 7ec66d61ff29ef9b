"""Training inputs: aligned-crop caching, pair sampling, and the ``tf.data`` pipelines.

Every image is decoded, detected and aligned once (the face pipeline), and the (S, S, 3) uint8
crop is cached as ``.npy`` keyed by the image file and the align spec, so epochs never re-run
detection. The ``tf.data`` pipelines then follow the seed's recipe on those crops: scale,
cache, shuffle, batch, prefetch. Two layouts are supported:

* the seed's ``anchor/``, ``positive/``, ``negative/`` folders -> (anchor, other, label) pairs;
* identity-labelled trees ``<identity>/<images>`` -> balanced genuine/impostor pairs sampled
  with a seed, split by identity (train and validation people disjoint), with augmentation
  (horizontal flip, small affine, colour jitter) on the training split only.

TensorFlow is imported inside the functions that build datasets, never at module level.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegate.config import FaceConfig
from facegate.errors import DataError
from facegate.face.types import AlignSpec
from facegate.model.manifest import Preprocessing
from facegate.training.lfw import IMAGE_SUFFIXES, LFW_FILE, IdentityIndex

logger = logging.getLogger(__name__)

SEED_FOLDERS = ("anchor", "positive", "negative")
# The seed took 300 images per folder (``.take(300)``) and trained on 70% of the pairs.
SEED_PER_FOLDER = 300
SEED_TRAIN_FRACTION = 0.7
VAL_BATCH = 128
# Detection floor for a labelled image's face (a known face at the centre; see labelled_crop).
LABELLED_MIN_SCORE = 0.3


def labelled_crop(pipeline: Any, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The aligned crop of an image's labelled face and whether a face was found.

    The labelled face is the detection nearest the image centre (LFW's convention), aligned
    without the quality gate. Where the pipeline's own score finds no usable face, a second
    pass accepts detections down to ``LABELLED_MIN_SCORE``: the image is known to hold a face
    at its centre, so a weak detection there is still that face. Where even that finds none
    (or its landmarks are implausible) the centre crop from ``fallback_landmarks`` is
    returned with ``False``. ``pipeline`` is a ``facegate.face.pipeline.FacePipeline``; the
    crop is (S, S, 3) uint8 RGB.
    """
    from facegate.face import align

    height, width = rgb.shape[:2]
    crop = _centre_face_crop(pipeline, rgb, pipeline.detect(rgb))
    if crop is None and pipeline.config.min_detection_score > LABELLED_MIN_SCORE:
        weak = pipeline.detector.detect(
            rgb, tiled=pipeline.config.tiled_detection, min_score=LABELLED_MIN_SCORE
        )
        if pipeline.refine:
            weak = [pipeline.detector.refine(rgb, det) for det in weak]
        crop = _centre_face_crop(pipeline, rgb, weak)
    if crop is not None:
        return crop, True
    fallback = align.fallback_landmarks(height, width)
    return align.align_face(rgb, fallback, pipeline.spec), False


def _centre_face_crop(pipeline: Any, rgb: np.ndarray, detections: list[Any]) -> np.ndarray | None:
    """The aligned crop of the detection nearest the centre, None if none is usable."""
    from facegate.face import align, quality

    if not detections:
        return None
    height, width = rgb.shape[:2]
    chosen = pipeline.select(detections, height, width, select="center")
    if isinstance(chosen, str) or not quality.landmarks_plausible(chosen):
        return None
    try:
        return align.align_face(rgb, chosen.landmarks, pipeline.spec)
    except ValueError as err:
        logger.debug("cannot align the detected face: %s", err)
        return None


class CropCache:
    """Aligned crops of image files, computed once and kept as ``.npy`` files in ``cache_dir``.

    The key is the image's resolved path, size and mtime plus the align spec and detector
    settings, so changing any of them recomputes the crop.
    """

    def __init__(self, cache_dir: Path, face_config: FaceConfig, spec: AlignSpec) -> None:
        self.cache_dir = Path(cache_dir)
        self.face_config = face_config
        self.spec = spec
        self._pipeline: Any = None
        self._salt = json.dumps(
            {
                "size": spec.size,
                "template": [list(p) for p in spec.template],
                "detector": face_config.detector,
                "min_score": face_config.min_detection_score,
            },
            sort_keys=True,
        )
        self.found = 0
        self.fallback = 0

    def _key(self, path: Path) -> str:
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self._salt}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _compute(self, path: Path) -> tuple[np.ndarray, bool]:
        from facegate.face.image_io import ImageDecodeError, load_image
        from facegate.face.pipeline import FacePipeline

        if self._pipeline is None:
            self._pipeline = FacePipeline(self.face_config, self.spec)
        try:
            rgb = load_image(path, max_side=self.face_config.max_image_side)
        except ImageDecodeError as err:
            raise DataError(f"{path}: cannot use this image: {err}") from err
        return labelled_crop(self._pipeline, rgb)

    def crop(self, path: Path) -> np.ndarray:
        """The (S, S, 3) uint8 crop of one image file (computed and cached on first use)."""
        path = Path(path)
        try:
            key = self._key(path)
        except OSError as err:
            raise DataError(f"{path}: cannot read: {err.strerror or err}") from err
        folder = self.cache_dir / key[:2]
        for name, found in ((f"{key}.npy", True), (f"{key}.fallback.npy", False)):
            cached = folder / name
            if cached.is_file():
                try:
                    crop = np.load(cached, allow_pickle=False)
                except (OSError, ValueError) as err:
                    logger.warning("unreadable cache entry %s (%s); recomputing", cached, err)
                    break
                if crop.shape == (self.spec.size, self.spec.size, 3):
                    self._count(found)
                    return crop
        crop, found = self._compute(path)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (f"{key}.npy" if found else f"{key}.fallback.npy")
        tmp = target.with_suffix(".tmp.npy")
        np.save(tmp, crop, allow_pickle=False)
        tmp.replace(target)
        self._count(found)
        return crop

    def _count(self, found: bool) -> None:
        if found:
            self.found += 1
        else:
            self.fallback += 1

    def crops(self, paths: Sequence[Path]) -> np.ndarray:
        """(N, S, S, 3) uint8 crops of ``paths``, in order; logs progress on long lists."""
        out = np.empty((len(paths), self.spec.size, self.spec.size, 3), np.uint8)
        for i, path in enumerate(paths):
            out[i] = self.crop(path)
            if (i + 1) % 1000 == 0:
                logger.info("aligned %d / %d images", i + 1, len(paths))
        if self.fallback:
            logger.info(
                "%d of %d images had no usable face: centre crop used", self.fallback, len(paths)
            )
        return out


# ---- pair sampling (pure numpy) -------------------------------------------------------------


@dataclass(frozen=True)
class ImageTable:
    """Images of an identity tree flattened: ``paths`` (N,) and ``labels`` (N,) int identity ids."""

    paths: tuple[Path, ...]
    labels: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def from_index(cls, index: IdentityIndex, identities: Sequence[str]) -> ImageTable:
        """The images of ``identities`` (in that order) from ``index``."""
        paths: list[Path] = []
        labels: list[int] = []
        for k, name in enumerate(identities):
            images = index.identities[name]
            paths.extend(images)
            labels.extend([k] * len(images))
        return cls(tuple(paths), np.asarray(labels, np.int64), tuple(identities))


def split_identities(
    index: IdentityIndex, val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Disjoint (train, validation) identity lists; both get multi-image people.

    People with two or more images and single-image people are split separately with the
    same fraction, so validation has genuine pairs and impostor-only people in proportion.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction {val_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    train: list[str] = []
    val: list[str] = []
    multi = sorted(n for n, v in index.identities.items() if len(v) >= 2)
    single = sorted(n for n, v in index.identities.items() if len(v) < 2)
    if len(multi) < 2:
        raise DataError(
            f"{index.root}: need at least 2 people with 2 or more images, found {len(multi)}"
        )
    for group in (multi, single):
        order = rng.permutation(len(group))
        n_val = round(len(group) * val_fraction)
        if group is multi:
            n_val = min(max(n_val, 1), len(group) - 1)
        val.extend(group[i] for i in order[:n_val])
        train.extend(group[i] for i in order[n_val:])
    return sorted(train), sorted(val)


def sample_pairs(
    labels: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced pairs over images with identity ``labels`` (N,): (a, b, y) int64/int64/float32.

    Half are genuine (an identity with >= 2 images chosen uniformly, then two distinct
    images), half impostor (two different identities chosen uniformly, one image of each).
    """
    labels = np.asarray(labels)
    by_id = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    multi = [ix for ix in by_id if ix.size >= 2]
    if not multi or len(by_id) < 2:
        raise DataError("pair sampling needs an identity with 2+ images and 2+ identities")
    n_gen = n_pairs // 2
    n_imp = n_pairs - n_gen
    a = np.empty(n_pairs, np.int64)
    b = np.empty(n_pairs, np.int64)
    for i, k in enumerate(rng.integers(len(multi), size=n_gen)):
        a[i], b[i] = rng.choice(multi[k], size=2, replace=False)
    first = rng.integers(len(by_id), size=n_imp)
    second = (first + rng.integers(1, len(by_id), size=n_imp)) % len(by_id)
    for i, (p, q) in enumerate(zip(first, second, strict=True)):
        a[n_gen + i] = rng.choice(by_id[p])
        b[n_gen + i] = rng.choice(by_id[q])
    y = np.r_[np.ones(n_gen, np.float32), np.zeros(n_imp, np.float32)]
    order = rng.permutation(n_pairs)
    return a[order], b[order], y[order]


def _lfw_person(path: Path) -> str | None:
    match = LFW_FILE.match(path.name)
    return match["name"] if match else None


def seed_layout_pairs(
    data_dir: Path,
    seed: int,
    per_folder: int = SEED_PER_FOLDER,
    exclude: frozenset[str] = frozenset(),
) -> tuple[list[Path], list[Path], np.ndarray]:
    """The seed's pairs from ``anchor/``, ``positive/``, ``negative/``: (anchors, others, y).

    Like the seed, up to ``per_folder`` shuffled images of each folder; anchor k pairs with
    positive k (label 1) and negative k (label 0). ``y`` is (2n,) float32. Images named
    ``<Person>_<iiii>.jpg`` (LFW negatives) of a person in ``exclude`` are left out.
    """
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    files: dict[str, list[Path]] = {}
    for folder in SEED_FOLDERS:
        path = data_dir / folder
        if not path.is_dir():
            raise DataError(
                f"{data_dir}: missing {folder}/ (seed layout: anchor, positive, negative)"
            )
        found = sorted(
            f
            for f in path.iterdir()
            if f.suffix.lower() in IMAGE_SUFFIXES and _lfw_person(f) not in exclude
        )
        if not found:
            raise DataError(f"{path}: no images")
        files[folder] = [found[i] for i in rng.permutation(len(found))]
    n = min(per_folder, *(len(v) for v in files.values()))
    anchors = files["anchor"][:n] * 2
    others = files["positive"][:n] + files["negative"][:n]
    y = np.r_[np.ones(n, np.float32), np.zeros(n, np.float32)]
    return anchors, others, y


# ---- tf.data ---------------------------------------------------------------------------------


def preprocess_op(preprocessing: Preprocessing) -> Any:
    """A TF function mapping uint8 or float (…, S, S, 3) in 0-255 to the model's float32 input."""
    from facegate.model.tf_runtime import import_tf

    tf = import_tf()
    scale = tf.constant(preprocessing.scale, tf.float32)
    offset = tf.constant(np.asarray(preprocessing.offset, np.float32))

    def apply(x: Any) -> Any:
        return tf.cast(x, tf.float32) * scale + offset

    return apply


def augment_batch(images: Any) -> Any:
    """Augment a (B, S, S, 3) float32 batch in 0-255: flip, small affine, colour jitter.

    Affine: rotation within +-8 degrees, scale 0.93-1.07, shift within +-4% of S, edges
    reflected. Colour: brightness +-20 levels, contrast 0.8-1.2, saturation 0.8-1.2.
    """
    from facegate.model.tf_runtime import import_tf

    tf = import_tf()
    shape = tf.shape(images)
    batch, size = shape[0], tf.cast(shape[1], tf.float32)
    flip = tf.random.uniform([batch, 1, 1, 1]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    angle = tf.random.uniform([batch], -8.0, 8.0) * (np.pi / 180.0)
    zoom = tf.random.uniform([batch], 0.93, 1.07)
    shift = tf.random.uniform([batch, 2], -0.04, 0.04) * size
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    centre = (size - 1.0) / 2.0
    # The transform maps output pixel (x, y) to input (a0 x + a1 y + a2, b0 x + b1 y + b2):
    # rotate and scale about the centre, then shift.
    a2 = centre - cos * centre + sin * centre - shift[:, 0]
    b2 = centre - sin * centre - cos * centre - shift[:, 1]
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    brightness = tf.random.uniform([batch, 1, 1, 1], -20.0, 20.0)
    contrast = tf.random.uniform([batch, 1, 1, 1], 0.8, 1.2)
    saturation = tf.random.uniform([batch, 1, 1, 1], 0.8, 1.2)
    grey = tf.reduce_mean(images, axis=3, keepdims=True)
    images = grey + (images - grey) * saturation
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = mean + (images - mean) * contrast + brightness
    return tf.clip_by_value(images, 0.0, 255.0)


def _pairs_dataset(
    crops: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, preprocessing: Preprocessing
) -> Any:
    """(anchor, other), label pairs gathered from a crop table, preprocessed, unbatched."""
    from facegate.model.tf_runtime import import_tf

    tf = import_tf()
    table = tf.constant(crops)
    prep = preprocess_op(preprocessing)
    ds = tf.data.Dataset.from_tensor_slices((a, b, y))
    return ds.map(
        lambda i, j, lab: ((prep(tf.gather(table, i)), prep(tf.gather(table, j))), lab),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


@dataclass
class PairData:
    """Ready-to-fit datasets of ((anchor, other), label) batches and what they hold."""

    train: Any
    val: Any
    steps_per_epoch: int | None
    description: dict[str, Any]
    val_pairs: tuple[np.ndarray, np.ndarray, np.ndarray]
    crops: np.ndarray


def seed_layout_data(
    data_dir: Path,
    cache: CropCache,
    preprocessing: Preprocessing,
    batch_size: int,
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
) -> PairData:
    """The seed's pipeline on an anchor/positive/negative folder: 70% train, 30% validation."""
    anchors, others, y = seed_layout_pairs(data_dir, seed, exclude=exclude)
    unique = sorted(set(anchors) | set(others))
    position = {p: k for k, p in enumerate(unique)}
    crops = cache.crops(unique)
    a = np.asarray([position[p] for p in anchors], np.int64)
    b = np.asarray([position[p] for p in others], np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    a, b, y = a[order], b[order], y[order]
    n_train = max(1, min(len(y) - 1, round(len(y) * SEED_TRAIN_FRACTION)))
    train = (
        _pairs_dataset(crops, a[:n_train], b[:n_train], y[:n_train], preprocessing)
        .cache()
        .shuffle(10000, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(8)
    )
    val = (
        _pairs_dataset(crops, a[n_train:], b[n_train:], y[n_train:], preprocessing)
        .cache()
        .batch(batch_size)
        .prefetch(8)
    )
    description = {
        "layout": "seed (anchor/positive/negative)",
        "data_dir": str(Path(data_dir).resolve()),
        "pairs": len(y),
        "train_pairs": n_train,
        "val_pairs": len(y) - n_train,
        "images": len(unique),
    }
    return PairData(
        train=train,
        val=val,
        steps_per_epoch=None,
        description=description,
        val_pairs=(a[n_train:], b[n_train:], y[n_train:]),
        crops=crops,
    )


def identity_data(
    index: IdentityIndex,
    cache: CropCache,
    preprocessing: Preprocessing,
    batch_size: int,
    *,
    pairs_per_epoch: int = 8192,
    val_pairs: int = 2000,
    val_fraction: float = 0.1,
    augment: bool = True,
    seed: int = 0,
    first_epoch: int = 0,
) -> PairData:
    """Balanced pairs from an identity tree, split by identity; fresh training pairs each epoch.

    Training pairs are drawn from the training identities by a seeded generator (a new draw
    every epoch, augmented when ``augment``; ``first_epoch`` > 0 on resume so a resumed run
    does not replay the first epochs' pairs); validation pairs are one fixed seeded draw from
    the disjoint validation identities, never augmented.
    """
    from facegate.model.tf_runtime import import_tf

    tf = import_tf()
    train_ids, val_ids = split_identities(index, val_fraction, seed)
    train_table = ImageTable.from_index(index, train_ids)
    val_table = ImageTable.from_index(index, val_ids)
    paths = train_table.paths + val_table.paths
    crops = cache.crops(paths)
    n_train_images = len(train_table.paths)
    train_labels = train_table.labels
    val_labels = val_table.labels
    va, vb, vy = sample_pairs(val_labels, val_pairs, np.random.default_rng(seed + 1))
    va, vb = va + n_train_images, vb + n_train_images
    prep = preprocess_op(preprocessing)
    table = tf.constant(crops)
    steps = max(1, pairs_per_epoch // batch_size)

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        rng = np.random.default_rng((seed, 2, first_epoch))
        while True:
            a, b, y = sample_pairs(train_labels, steps * batch_size, rng)
            for k in range(steps):
                s = slice(k * batch_size, (k + 1) * batch_size)
                yield a[s], b[s], y[s]

    spec = tf.TensorSpec([None], tf.int64)
    train = tf.data.Dataset.from_generator(
        generate, output_signature=(spec, spec, tf.TensorSpec([None], tf.float32))
    )

    def load(i: Any, j: Any, lab: Any) -> Any:
        x1 = tf.cast(tf.gather(table, i), tf.float32)
        x2 = tf.cast(tf.gather(table, j), tf.float32)
        if augment:
            x1, x2 = augment_batch(x1), augment_batch(x2)
        return (prep(x1), prep(x2)), lab

    train = train.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(4)
    # Validation has no gradients: bigger batches cost little memory and save per-step overhead.
    val_batch = max(batch_size, VAL_BATCH)
    val = _pairs_dataset(crops, va, vb, vy, preprocessing).cache().batch(val_batch).prefetch(4)
    description = {
        "layout": "identity (<identity>/<images>)",
        "data_dir": str(Path(index.root).resolve()),
        "people": index.people,
        "images": index.images,
        "train_people": len(train_ids),
        "train_images": n_train_images,
        "val_people": len(val_ids),
        "val_images": len(val_table.paths),
        "pairs_per_epoch": steps * batch_size,
        "val_pairs": int(vy.size),
        "augmentation": "flip, rotation +-8 deg, scale 0.93-1.07, shift +-4%, colour jitter"
        if augment
        else "none",
        "seed": seed,
    }
    return PairData(
        train=train,
        val=val,
        steps_per_epoch=steps,
        description=description,
        val_pairs=(va, vb, vy),
        crops=crops,
    )
