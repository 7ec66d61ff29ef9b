"""Train a Siamese model (seed or identity mode) and write a model directory with its manifest.

A run directory ``out`` holds:

* ``checkpoints/last.keras`` (every epoch, optimizer included, for ``resume``),
  ``checkpoints/best.weights.h5`` (lowest validation loss) and ``checkpoints/history.csv``;
* ``model/``: the model directory written by ``save_model_dir`` (best weights, manifest with
  thresholds calibrated on the validation pairs, training description, exclusion record,
  validation metrics) plus ``training_curve.png``;
* ``training_curve.png``: loss, precision and recall per epoch, train and validation.

Seed mode follows the seed: anchor/positive/negative folders, binary cross-entropy, Adam 1e-4,
precision and recall. Identity mode samples balanced pairs from an identity-labelled tree split
by identity, optionally excluding every person named in a protocol file (e.g. pairsDevTest.txt).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facegate import __version__
from facegate.config import FaceConfig
from facegate.errors import DataError, ModelError
from facegate.face.types import AlignSpec
from facegate.training import lfw, metrics

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.weights.h5"
HISTORY_FILE = "history.csv"
RUN_FILE = "run.json"
MODEL_SUBDIR = "model"
CURVE_FILE = "training_curve.png"
EXCLUSION_RULE = (
    "every identity named in the protocol file is excluded from training and validation data"
)

Mode = Literal["seed", "identity"]


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run needs; paths are the data tree and the run directory."""

    mode: Mode
    data: Path
    out: Path
    arch: str = "compact"
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-4
    resume: bool = False
    exclude_pairs: tuple[Path, ...] = ()
    patience: int = 5
    # Identity mode: share of identities held out for validation, pairs drawn per epoch.
    val_fraction: float = 0.1
    pairs_per_epoch: int = 8192
    val_pairs: int = 2000
    augment: bool = True
    input_size: int | None = None
    embedding_dim: int | None = None
    seed: int = 0
    cache_dir: Path | None = None
    name: str | None = None
    # Keras progress: 1 = a bar per epoch, 2 = one line per epoch, 0 = silent; None = auto.
    verbose: int | None = None
    # Stop after the epoch during which this many seconds of fitting have passed (None: no cap).
    time_budget_s: float | None = None
    # Keras' eager mode: no graph tracing (a deep tower takes ~1 min to trace on 2 cores), so
    # tiny runs (tests) finish sooner; slower per step.
    run_eagerly: bool = False
    extra_training_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """Where the model went and how it did on the validation pairs."""

    model_dir: Path
    curve: Path
    epochs_run: int
    validation: dict[str, Any]


def _exclusion(paths: tuple[Path, ...]) -> tuple[frozenset[str], dict[str, Any] | None]:
    """The excluded people and the manifest's record of the rule (None when nothing excluded)."""
    if not paths:
        return frozenset(), None
    people: set[str] = set()
    for path in paths:
        people |= lfw.protocol_people(path)
    record = {
        "rule": EXCLUSION_RULE,
        "protocol_files": [Path(p).name for p in paths],
        "excluded_people": len(people),
        "identity_list_sha256": lfw.identity_checksum(people),
        "checksum_definition": "sha256 of the sorted identity names joined by newlines",
    }
    return frozenset(people), record


def _time_budget(keras: Any, seconds: float) -> Any:
    """A Keras callback that ends training after the epoch in which ``seconds`` ran out."""

    class TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.monotonic() - self.started >= seconds:
                logger.info(
                    "time budget of %.0f s spent after epoch %d: stopping", seconds, epoch + 1
                )
                self.model.stop_training = True

    return TimeBudget()


def _build_model(options: TrainOptions) -> tuple[Any, Any]:
    """A fresh compiled Siamese model and its ArchitectureSpec."""
    from facegate.model.architectures import get_architecture
    from facegate.model.siamese import compile_siamese, make_siamese

    spec = get_architecture(options.arch)
    if options.arch == "seed" and options.input_size in (None, spec.input_size):
        from facegate.model.seed import make_siamese_model

        model = make_siamese_model()
    elif options.arch == "compact" and options.embedding_dim is not None:
        from facegate.model.compact import make_compact_embedding

        size = options.input_size or spec.input_size
        model = make_siamese(make_compact_embedding(size, options.embedding_dim))
    else:
        model = spec.build_siamese(options.input_size)
    return compile_siamese(model, options.learning_rate), spec


def _read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch history Keras' CSVLogger wrote (columns: epoch, loss, val_loss, ...)."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    history: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and value not in (None, ""):
                history.setdefault(key, []).append(float(value))
    return history


def _epochs_done(history_path: Path) -> int:
    if not history_path.is_file():
        return 0
    with history_path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def _check_same_run(run_file: Path, options: TrainOptions) -> None:
    """Refuse to resume checkpoints of another mode or architecture (the manifest would lie)."""
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # an older run without the record: nothing to compare
    for key in ("mode", "arch"):
        if run.get(key) != getattr(options, key):
            raise ModelError(
                f"{run_file.parent}: checkpoints are {key} {run.get(key)!r}, "
                f"not {getattr(options, key)!r}; resume with the same --{key}"
            )


def _load_checkpoint(path: Path) -> Any:
    from facegate.model import layers  # noqa: F401  (registers the custom layers)
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:
        # Keras raises many exception types for an unreadable file.
        raise ModelError(f"{path}: cannot load checkpoint: {err}") from err


def _validation_scores(model: Any, data: Any, preprocessing: Any) -> tuple[np.ndarray, np.ndarray]:
    """Numpy Siamese-head scores of the validation pairs (as ``facegate evaluate`` scores)."""
    from facegate.model.embedder import TensorFlowEmbedder
    from facegate.model.scoring import SiameseHead
    from facegate.model.siamese import CLASSIFIER_LAYER, embedding_tower

    a, b, y = data.val_pairs
    used = np.unique(np.r_[a, b])
    embedder = TensorFlowEmbedder(embedding_tower(model), preprocessing)
    emb = np.zeros((len(data.crops), embedder.embedding_dim), np.float32)
    emb[used] = embedder.embed(data.crops[used])
    kernel, bias = model.get_layer(CLASSIFIER_LAYER).get_weights()
    head = SiameseHead(kernel=np.asarray(kernel, np.float32).reshape(-1), bias=float(bias[0]))
    return head.pair_scores(emb[a], emb[b]), y


def train(options: TrainOptions, face_config: FaceConfig) -> TrainResult:
    """Run one training; returns where the model directory is and its validation numbers."""
    from facegate.model.bundle import save_model_dir
    from facegate.model.manifest import Thresholds
    from facegate.model.tf_runtime import import_keras
    from facegate.training import datasets, plots

    keras = import_keras()
    keras.utils.set_random_seed(options.seed)
    if options.epochs < 1 or options.batch_size < 1:
        raise DataError("epochs and batch size must be at least 1")
    out = Path(options.out)
    ckpt_dir = out / CHECKPOINT_DIR
    last, best, history_path = (
        ckpt_dir / LAST_CHECKPOINT,
        ckpt_dir / BEST_CHECKPOINT,
        ckpt_dir / HISTORY_FILE,
    )
    excluded, exclusion_record = _exclusion(options.exclude_pairs)

    if options.resume:
        if not last.is_file():
            raise ModelError(f"{out}: nothing to resume (no {CHECKPOINT_DIR}/{LAST_CHECKPOINT})")
        _check_same_run(ckpt_dir / RUN_FILE, options)
        model = _load_checkpoint(last)
        from facegate.model.architectures import get_architecture

        spec = get_architecture(options.arch)
        initial_epoch = _epochs_done(history_path)
        logger.info("resuming %s after epoch %d", last, initial_epoch)
    else:
        if last.exists():
            logger.warning("%s holds checkpoints of an earlier run: starting afresh", ckpt_dir)
            for stale in (last, best, history_path):
                stale.unlink(missing_ok=True)
        model, spec = _build_model(options)
        initial_epoch = 0
    from facegate.model.siamese import embedding_tower

    input_size = int(embedding_tower(model).input_shape[1])
    align_spec = AlignSpec(size=input_size, template=tuple(spec.default_template(input_size)))
    cache_dir = options.cache_dir or out / "crop-cache"
    cache = datasets.CropCache(cache_dir, face_config, align_spec)

    if options.mode == "seed":
        data = datasets.seed_layout_data(
            options.data,
            cache,
            spec.preprocessing,
            options.batch_size,
            seed=options.seed,
            exclude=excluded,
        )
    elif options.mode == "identity":
        index = lfw.index_tree(options.data, exclude=excluded)
        data = datasets.identity_data(
            index,
            cache,
            spec.preprocessing,
            options.batch_size,
            pairs_per_epoch=options.pairs_per_epoch,
            val_pairs=options.val_pairs,
            val_fraction=options.val_fraction,
            augment=options.augment,
            seed=options.seed,
            first_epoch=initial_epoch,
        )
        data.description["excluded_people_found_in_data"] = len(index.excluded)
    else:
        raise DataError(f"unknown training mode {options.mode!r} (seed or identity)")
    data.description["aligned_images_without_face"] = cache.fallback

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / RUN_FILE).write_text(
        json.dumps({"mode": options.mode, "arch": options.arch}) + "\n", encoding="utf-8"
    )
    # On resume, "best" must beat the best epoch before the interruption, not just infinity.
    previous_val = _read_history(history_path).get("val_loss") if options.resume else None
    callbacks = [
        keras.callbacks.ModelCheckpoint(last),
        # Weights only: the optimizer's slots would triple the file and are never resumed from.
        keras.callbacks.ModelCheckpoint(
            best,
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=min(previous_val) if previous_val else None,
        ),
        keras.callbacks.CSVLogger(history_path, append=options.resume),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience),
    ]
    if options.time_budget_s is not None:
        callbacks.append(_time_budget(keras, options.time_budget_s))
    model.run_eagerly = options.run_eagerly
    verbose = options.verbose if options.verbose is not None else (1 if sys.stdout.isatty() else 2)
    started = time.monotonic()
    if initial_epoch < options.epochs:
        model.fit(
            data.train,
            validation_data=data.val,
            epochs=options.epochs,
            initial_epoch=initial_epoch,
            # None: a finite (seed-layout) dataset defines its own epoch.
            steps_per_epoch=data.steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the datasets shuffle themselves
            verbose=verbose,
        )
    duration = time.monotonic() - started
    epochs_run = _epochs_done(history_path)
    if best.is_file():
        model.load_weights(best)

    scores, y = _validation_scores(model, data, spec.preprocessing)
    if 0 < y.sum() < y.size:
        threshold, _ = metrics.best_threshold(scores, y)
        validation: dict[str, Any] = metrics.verification_report(
            scores, y, metrics.make_folds(y), threshold
        )
        validation["note"] = "threshold chosen on these validation pairs (optimistic accuracy)"
    else:
        # Too few validation pairs to hold both classes: keep the head's own boundary.
        threshold = 0.5
        validation = {"pairs": int(y.size), "note": "validation pairs of one class only"}
        logger.warning("validation pairs hold one class only: detection threshold left at 0.5")
    history = _read_history(history_path)
    if history.get("val_loss"):
        validation["best_val_loss"] = float(min(history["val_loss"]))

    training: dict[str, Any] = {
        "mode": options.mode,
        "data": data.description,
        "epochs_requested": options.epochs,
        "epochs_run": epochs_run,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "loss": "binary cross-entropy",
        "optimizer": "Adam",
        "early_stopping": {"monitor": "val_loss", "patience": options.patience},
        "seed": options.seed,
        "time_budget_s": options.time_budget_s,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "train_seconds_this_session": round(duration, 1),
        "facegate_version": __version__,
        "thresholds": "detection: best accuracy on the validation pairs; verification: default",
        **options.extra_training_info,
    }
    if exclusion_record is not None:
        training["exclusion"] = exclusion_record
    name = options.name or f"{options.arch}-{options.mode}-{datetime.now(UTC):%Y%m%d%H%M}"
    model_dir = out / MODEL_SUBDIR
    save_model_dir(
        model,
        model_dir,
        name=name,
        arch=options.arch,
        template=align_spec.template,
        preprocessing=spec.preprocessing,
        thresholds=Thresholds(detection=float(np.clip(threshold, 1e-6, 1 - 1e-6))),
        training=training,
        metrics={"validation": validation},
    )
    curve = plots.training_curves(history, out / CURVE_FILE, title=name)
    (model_dir / CURVE_FILE).write_bytes(curve.read_bytes())
    logger.info(
        "model %s: validation accuracy %.3f at %.3f, AUC %.3f",
        model_dir,
        validation.get("accuracy", float("nan")),
        threshold,
        validation.get("auc", float("nan")),
    )
    return TrainResult(
        model_dir=model_dir, curve=curve, epochs_run=epochs_run, validation=validation
    )
