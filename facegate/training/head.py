"""Train the Siamese head (``Dense(1, sigmoid)`` on ``|a - b|``) on cached pair embeddings.

With a frozen, pretrained tower the head is all that needs training, and it only ever sees
embeddings: so images are embedded once (``embed_images``), balanced genuine/impostor pairs
are drawn from identity labels (``sample_pairs``) and the head is fitted with binary
cross-entropy and Adam as the seed does (``train_head``), in seconds instead of hours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    """Hyperparameters of head training (binary cross-entropy, Adam)."""

    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-2
    # L2 penalty on the kernel: without it scores of close pairs saturate at exactly 1.0 in
    # float32, and on held-out people it raised TAR at FAR 1e-3 (0.943 -> 0.952, unit-norm
    # flip embeddings) at no cost elsewhere.
    weight_decay: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class PairSet:
    """Row-aligned pairs of embedding indices ``a``, ``b`` (N,) int and ``labels`` (N,) 0/1."""

    a: np.ndarray
    b: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        """Number of pairs."""
        return int(self.labels.size)


def embed_images(
    paths: Sequence[Path],
    crop: Callable[[np.ndarray], tuple[np.ndarray, bool]],
    embed: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float32 embeddings of image files, and (N,) bool "a face was detected".

    ``crop`` turns an RGB image into (aligned crop, face found), e.g.
    ``facegate.training.datasets.labelled_crop`` over a pipeline; ``embed`` maps (B, S, S, 3)
    uint8 crops to (B, D) embeddings.
    """
    from facegate.face.image_io import load_image

    out: list[np.ndarray] = []
    found = np.zeros(len(paths), dtype=bool)
    batch: list[np.ndarray] = []
    for i, path in enumerate(paths):
        face, found[i] = crop(load_image(path))
        batch.append(face)
        if len(batch) == batch_size or i == len(paths) - 1:
            out.append(np.asarray(embed(np.stack(batch)), dtype=np.float32))
            batch = []
            if (i + 1) % (batch_size * 20) == 0 or i == len(paths) - 1:
                logger.info("embedded %d/%d images", i + 1, len(paths))
    dim = out[0].shape[1] if out else 0
    return (np.concatenate(out) if out else np.zeros((0, dim), np.float32)), found


def sample_pairs(labels: np.ndarray, genuine: int, impostor: int, seed: int = 0) -> PairSet:
    """Balanced random pairs over images labelled by identity ((N,) int ``labels``).

    Genuine pairs pick a person with two or more images uniformly (as LFW's pair files do,
    so people with hundreds of images do not dominate), then two distinct images; impostor
    pairs pick two distinct people, then one image of each. Duplicates are possible.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    people = np.unique(labels)
    members = {p: np.flatnonzero(labels == p) for p in people}
    multi = [p for p in people if members[p].size >= 2]
    if not multi or people.size < 2:
        raise ValueError("need two people and someone with two images")
    a = np.empty(genuine + impostor, dtype=np.int64)
    b = np.empty_like(a)
    for k in range(genuine):
        idx = members[multi[rng.integers(len(multi))]]
        a[k], b[k] = rng.choice(idx, size=2, replace=False)
    for k in range(genuine, genuine + impostor):
        p, q = rng.choice(people, size=2, replace=False)
        a[k] = rng.choice(members[p])
        b[k] = rng.choice(members[q])
    y = np.r_[np.ones(genuine), np.zeros(impostor)].astype(np.float32)
    return PairSet(a=a, b=b, labels=y)


def split_people(labels: np.ndarray, held_out: float, seed: int = 0) -> np.ndarray:
    """(N,) bool mask of images whose person falls in a random ``held_out`` share of people."""
    rng = np.random.default_rng(seed)
    people = np.unique(labels)
    chosen = rng.choice(people, size=round(held_out * people.size), replace=False)
    return np.isin(labels, chosen)


def train_head(
    embeddings: np.ndarray, pairs: PairSet, config: HeadConfig
) -> tuple[np.ndarray, float, list[float]]:
    """Fit ``Dense(1, sigmoid)`` on ``|a - b|`` with BCE and Adam (and an L2 penalty on the
    kernel): (kernel (D,), bias, losses).

    The features are the L1 distances of the pairs' embeddings; the returned kernel and bias
    are those of the Siamese model's ``classifier`` layer.
    """
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    features = np.abs(embeddings[pairs.a] - embeddings[pairs.b]).astype(np.float32)
    inputs = keras.Input(shape=(features.shape[1],))
    penalty = keras.regularizers.L2(config.weight_decay) if config.weight_decay else None
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=penalty)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
    )
    history = model.fit(
        features,
        pairs.labels,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        verbose=0,
    )
    kernel, bias = model.layers[-1].get_weights()
    losses = [float(v) for v in history.history["loss"]]
    logger.info("head trained on %d pairs: loss %.4f -> %.4f", len(pairs), losses[0], losses[-1])
    return kernel.reshape(-1).astype(np.float32), float(bias[0]), losses


def euclidean_scores(embeddings: np.ndarray, pairs: PairSet) -> np.ndarray:
    """Negated Euclidean distances of the pairs (higher is more similar): (N,) float32."""
    diff = embeddings[pairs.a] - embeddings[pairs.b]
    return -np.linalg.norm(diff, axis=1).astype(np.float32)
