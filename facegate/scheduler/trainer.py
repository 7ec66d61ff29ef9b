"""The retrain's training process: ``python -m facegate.scheduler.trainer JOB.json``.

It limits itself first (address space via ``resource.setrlimit``, CPU time as a backstop, a
lower priority) and only then imports TensorFlow. It fine-tunes the base model with the seed's
recipe (anchor/positive/negative pairs, binary cross-entropy, Adam): by default the Siamese
head only, the tower too with ``scheduler.retrain_tower``. Positives are pairs of one user's
training images; negatives, as many, are pairs of two users' images and of a user's image with
an LFW face of a person outside pairsDevTest (so the DevTest benchmark stays honest). The
detection threshold is the one minimising ``far_weight * FAR + FRR`` on the training pairs.
The candidate is saved with ``save_model_dir`` and given the active model's LiteRT exports
(``export_like``: int8 calibrated on the site's training crops); then old and new are evaluated
on the same held-out pairs, on the runtime the door uses, and everything is written to the
job's result file.

``facegate.training.train`` trains a fresh model from an image tree; fine-tuning the active
model on in-memory gallery crops is what this module adds, with the same compile recipe
(``compile_siamese``).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facegate.model.manifest import FULL

logger = logging.getLogger(__name__)

BATCH_SIZE = 16
# Positive pairs drawn at most (all pairs of a user's images grow quadratically).
MAX_POSITIVES = 2000


def apply_limits(memory_mb: int, cpu_s: float) -> None:
    """Cap this process's address space and CPU time, and lower its priority."""
    memory = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(cpu_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    os.nice(10)


def training_pairs(
    labels: np.ndarray, negatives: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced pairs over site images (N,) user ids plus ``negatives`` extra faces.

    Returns index arrays ``a``, ``b`` and labels ``y`` (1 same person, 0 not); an index
    ``>= N`` names extra face ``index - N`` (an LFW impostor).
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    same = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]]
    if len(same) > MAX_POSITIVES:
        same = [same[k] for k in rng.choice(len(same), MAX_POSITIVES, replace=False)]
    cross = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] != labels[j]]
    extra = [(int(rng.integers(n)), n + k) for k in range(negatives)]
    pool = cross + extra
    rng.shuffle(pool)
    take = pool[: max(len(same), 1)]
    pairs = same + take
    y = np.array([1.0] * len(same) + [0.0] * len(take), np.float32)
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    return a, b, y


def weighted_threshold(scores: np.ndarray, labels: np.ndarray, far_weight: float) -> float:
    """The threshold in (0, 1) minimising ``far_weight * FAR + FRR`` on these pairs (ties:
    the middle of the best run)."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    distinct = np.unique(s)
    candidates = np.r_[distinct[0] - 1e-6, (distinct[:-1] + distinct[1:]) / 2, distinct[-1] + 1e-6]
    costs = np.array([far_weight * np.mean(s[~y] >= t) + np.mean(s[y] < t) for t in candidates])
    best = np.flatnonzero(costs <= costs.min() + 1e-12)
    return float(np.clip(candidates[best[best.size // 2]], 1e-4, 1 - 1e-4))


def _lfw_negatives(config: Any, spec: Any, count: int, seed: int = 0) -> np.ndarray:
    """Up to ``count`` aligned LFW faces of people outside pairsDevTest ((M, S, S, 3))."""
    from facegate.scheduler.retrain import crop_images
    from facegate.training import lfw

    root = config.scheduler.lfw_dir
    if root is None or count <= 0:
        return np.zeros((0, spec.size, spec.size, 3), np.uint8)
    images = Path(root) / "lfw-deepfunneled"
    devtest = Path(root) / "protocol" / "pairsDevTest.txt"
    if not images.is_dir() or not devtest.is_file():
        return np.zeros((0, spec.size, spec.size, 3), np.uint8)
    index = lfw.index_tree(images, exclude=lfw.protocol_people(devtest))
    rng = np.random.default_rng(seed)
    people = sorted(index.identities)
    picks = rng.choice(len(people), size=min(count, len(people)), replace=False)
    paths = tuple(index.identities[people[k]][0] for k in sorted(picks))
    crops, found = crop_images(paths, spec, config)
    return crops[found]


def _trainable_siamese(base: Any, variant: str, retrain_tower: bool) -> Any:
    """The Siamese model to fine-tune: the full one, or the fast variant's head on the plain
    tower (which the full model shares, so it stays frozen)."""
    from facegate.model.resnet import plain_view
    from facegate.model.siamese import CLASSIFIER_LAYER, embedding_tower, make_siamese

    if variant == FULL:
        embedding_tower(base.siamese).trainable = retrain_tower
        return base.siamese
    tower = plain_view(embedding_tower(base.siamese))
    tower.trainable = False
    siamese = make_siamese(tower)
    head = base.manifest.variants[variant]
    siamese.get_layer(CLASSIFIER_LAYER).set_weights(
        [
            np.asarray(head.head_kernel, np.float32).reshape(-1, 1),
            np.array([head.head_bias], np.float32),
        ]
    )
    return siamese


def fine_tune(job: dict[str, Any]) -> dict[str, Any]:
    """Train, save and evaluate the candidate described by ``job``; return the result.

    A door serving the fast variant fine-tunes that variant's head: the candidate is the base
    model with the full head unchanged and the new head as its fast variant."""
    from facegate.config import FacegateConfig
    from facegate.model.bundle import (
        load_model_dir,
        resolve_runtime,
        save_model_dir,
        serve_variant,
    )
    from facegate.model.export import export_like
    from facegate.model.manifest import Thresholds, Variant
    from facegate.model.siamese import CLASSIFIER_LAYER, compile_siamese
    from facegate.model.tf_runtime import import_keras
    from facegate.scheduler.retrain import SiteSplit, evaluate_models, lfw_devtest_pairs

    config = FacegateConfig.model_validate(job["config"])
    sched = config.scheduler
    variant = config.model.variant
    keras = import_keras()
    keras.utils.set_random_seed(0)
    base = load_model_dir(Path(job["base_model"]))
    # Old and new are judged on the runtime the door serves them with (a LiteRT export is
    # quantized: its scores differ a little from the Keras model's).
    runtime = resolve_runtime(config.model.runtime, base.manifest)
    with np.load(job["site"]) as data:
        split = SiteSplit(
            data["train_crops"], data["train_labels"], data["held_crops"], data["held_labels"]
        )
    # The old model is scored first: the fit below changes it in memory.
    lfw_pairs = lfw_devtest_pairs(sched.lfw_dir, sched.retrain_lfw_pairs)
    lfw_crops: dict[Any, Any] = {}
    if runtime == "tensorflow":
        served = serve_variant(base, variant)
    else:
        served = load_model_dir(base.path, runtime, variant)
    old = evaluate_models({"old": served}, split, lfw_pairs, config, lfw_crops)
    logger.info("evaluated the active model")
    spec = base.manifest.align_spec
    extra = _lfw_negatives(config, spec, sched.retrain_negatives)
    images = np.concatenate([split.train_crops, extra]) if len(extra) else split.train_crops
    a, b, y = training_pairs(split.train_labels, len(extra))

    pre = base.manifest.preprocessing
    pixels = images.astype(np.float32) * pre.scale + np.asarray(pre.offset, np.float32)
    if variant != FULL and sched.retrain_tower:
        logger.warning("the %s variant shares its tower with the full model: head only", variant)
    siamese = _trainable_siamese(base, variant, bool(sched.retrain_tower))
    compile_siamese(siamese, sched.retrain_learning_rate)
    history = siamese.fit(
        [pixels[a], pixels[b]],
        y,
        batch_size=BATCH_SIZE,
        epochs=sched.retrain_epochs,
        shuffle=True,
        verbose=0,
    )
    scores = np.asarray(siamese.predict([pixels[a], pixels[b]], verbose=0)).ravel()
    threshold = weighted_threshold(scores, y, sched.far_weight)
    logger.info("fine-tuned %s: %d pairs, %d epochs", variant, len(y), sched.retrain_epochs)
    tower_trained = bool(sched.retrain_tower) and variant == FULL
    training = {
        "base_model": base.manifest.sha256,
        "recipe": "seed: pairs, binary cross-entropy, Adam",
        "trained": "tower and head" if tower_trained else "head only",
        "variant": variant,
        "epochs": sched.retrain_epochs,
        "learning_rate": sched.retrain_learning_rate,
        "positive_pairs": int(y.sum()),
        "negative_pairs": int((1 - y).sum()),
        "lfw_negatives": len(extra),
        "site_train_images": len(split.train_crops),
        "site_heldout_images": len(split.held_crops),
        "final_loss": float(history.history["loss"][-1]),
        "threshold_rule": "min far_weight*FAR+FRR on the training pairs",
    }
    fitted = Thresholds(detection=threshold, verification=served.manifest.thresholds.verification)
    if variant == FULL:
        # A variant's head still fits a tower that was not trained; a retrained one, not.
        thresholds = fitted
        variants = {} if tower_trained else dict(base.manifest.variants)
    else:
        kernel, bias = siamese.get_layer(CLASSIFIER_LAYER).get_weights()
        old_variant = base.manifest.variants[variant]
        variants = {
            **base.manifest.variants,
            variant: Variant(
                flip_average=old_variant.flip_average,
                head_kernel=tuple(float(v) for v in np.asarray(kernel).reshape(-1)),
                head_bias=float(np.asarray(bias).reshape(-1)[0]),
                thresholds=fitted,
                training={**old_variant.training, "site_fine_tune": training},
            ),
        }
        # The full model (frozen tower, its own head) is the base's, untouched.
        thresholds = base.manifest.thresholds
    save_model_dir(
        base.siamese,
        Path(job["out_dir"]),
        name=job["name"],
        arch=base.manifest.arch,
        template=base.manifest.template,
        preprocessing=pre,
        thresholds=thresholds,
        training={**base.manifest.training, "site_fine_tune": training},
        weights_dtype=base.manifest.training.get("weights_dtype", "float32"),
        variants=variants,
    )
    out_dir = Path(job["out_dir"])
    # The candidate gets the active model's LiteRT exports (int8 calibrated on the site's own
    # gallery crops), so a site running runtime = "litert" can serve it once promoted.
    exported: list[Path] = []
    if base.manifest.tflite:
        saved = load_model_dir(out_dir)
        exported = export_like(saved, out_dir, base.manifest, split.train_crops)
    training["litert_exports"] = [path.name for path in exported]
    candidate = load_model_dir(out_dir, runtime, variant)
    logger.info("evaluating the candidate")
    new = evaluate_models({"new": candidate}, split, lfw_pairs, config, lfw_crops)
    evaluation = {"old": old["old"], "new": new["new"]}
    return {"model_dir": job["out_dir"], "training": training, "evaluation": evaluation}


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the job file, limit, train, write the result file."""
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    sched = job["config"]["scheduler"]
    # CPU time is only a backstop (TensorFlow runs a few helper threads besides its pool);
    # the parent enforces the wall-clock limit.
    cpu_s = sched["retrain_time_limit_s"] * (sched["retrain_threads"] + 2)
    apply_limits(sched["retrain_memory_mb"], cpu_s)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    result = fine_tune(job)
    tmp = Path(job["result"]).with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, job["result"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
