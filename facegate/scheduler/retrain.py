"""Site retraining, the seed's idea made safe.

The active model is fine-tuned on the site's own galleries (anchors and positives) and impostor
faces (other users, LFW people outside pairsDevTest) in a separate process
(``facegate.scheduler.trainer``) with a wall-clock limit, an address-space limit
(``resource.setrlimit``), few threads and a lower priority, so the door keeps verifying.
Old and new are then scored on the same held-out data: pairs of the site's held-out gallery
images against the rest of the galleries, and LFW pairsDevTest when the data is present.
The candidate is promoted (galleries re-embedded first, see ``promote``) only when it is not
worse than the active model on either benchmark, where a false accept costs ``far_weight``
false rejects; otherwise it is rejected. Either way the registry records why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facegate.config import FacegateConfig
from facegate.enrollment.embedding import fit_crops, read_model_crop
from facegate.errors import DataError, ModelError
from facegate.scheduler.calibrate import door_thresholds
from facegate.storage.records import ModelVersion
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.face.types import AlignSpec
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)

MODELS_DIR = "models"
JOB_FILE = "job.json"
SITE_FILE = "site.npz"
RESULT_FILE = "result.json"
LOG_FILE = "trainer.log"
SITE_BENCHMARK = "site_heldout"
LFW_BENCHMARK = "lfw_devtest"
# Equal weighted errors count as "not worse" only when the AUC did not drop more than this.
AUC_TOLERANCE = 0.01
_EPS = 1e-9


# -- held-out site data ------------------------------------------------------------------


@dataclass(frozen=True)
class SiteSplit:
    """The site's galleries split per user: ``train_*`` for fine-tuning (and as references in
    evaluation), ``held_*`` never trained on. Crops (N, S, S, 3) uint8; labels (N,) int64
    user ids."""

    train_crops: np.ndarray
    train_labels: np.ndarray
    held_crops: np.ndarray
    held_labels: np.ndarray

    @property
    def usable(self) -> bool:
        """True with at least two users having held-out images, so both pair kinds exist."""
        held = set(self.held_labels.tolist())
        return len(held) >= 2 and all(np.any(self.train_labels == u) for u in held)


def site_split(registry: Registry, holdout: float, spec: AlignSpec) -> SiteSplit:
    """Split every active user's gallery: ``holdout`` of it (at least one image, users with
    three or more images only) is held out, chosen by image hash (stable across runs).
    The crops are each image's crop for ``spec`` (the active model's)."""
    size = spec.size
    users = {u.id for u in registry.list_users(active_only=True)}
    per_user: dict[int, list] = {}
    for image in registry.all_gallery_images():
        if image.user_id in users:
            per_user.setdefault(image.user_id, []).append(image)
    train: list[tuple[int, np.ndarray]] = []
    held: list[tuple[int, np.ndarray]] = []
    for user_id, images in sorted(per_user.items()):
        ordered = sorted(images, key=lambda i: hashlib.sha256(i.sha256.encode()).hexdigest())
        count = max(1, int(len(ordered) * holdout)) if len(ordered) >= 3 else 0
        for k, image in enumerate(ordered):
            crop = read_model_crop(registry, image, spec)
            (held if k < count else train).append((user_id, crop))

    def stack(items: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if not items:
            return np.zeros((0, size, size, 3), np.uint8), np.zeros((0,), np.int64)
        return np.stack([c for _, c in items]), np.array([u for u, _ in items], np.int64)

    train_crops, train_labels = stack(train)
    held_crops, held_labels = stack(held)
    return SiteSplit(train_crops, train_labels, held_crops, held_labels)


# -- LFW DevTest pairs -------------------------------------------------------------------


@dataclass(frozen=True)
class LfwPairs:
    """Protocol pairs as image paths: ``paths`` (M,), ``a``/``b`` (P,) indices, ``labels``
    (P,) bool (True = same person)."""

    paths: tuple[Path, ...]
    a: np.ndarray
    b: np.ndarray
    labels: np.ndarray


def lfw_devtest_pairs(lfw_dir: Path | None, limit: int) -> LfwPairs | None:
    """The first ``limit // 2`` genuine and impostor pairsDevTest pairs, or None when the
    data is absent."""
    if lfw_dir is None or limit < 2:
        return None
    from facegate.training.lfw import parse_pairs

    images = Path(lfw_dir) / "lfw-deepfunneled"
    protocol = Path(lfw_dir) / "protocol" / "pairsDevTest.txt"
    if not images.is_dir() or not protocol.is_file():
        logger.info("LFW DevTest not found under %s: site benchmark only", lfw_dir)
        return None
    pairs = parse_pairs(protocol).pairs
    half = limit // 2
    chosen = [p for p in pairs if p.genuine][:half] + [p for p in pairs if not p.genuine][:half]
    index: dict[Path, int] = {}
    a, b = [], []
    for pair in chosen:
        first, second = pair.paths(images)
        a.append(index.setdefault(first, len(index)))
        b.append(index.setdefault(second, len(index)))
    return LfwPairs(
        paths=tuple(index),
        a=np.array(a, np.int64),
        b=np.array(b, np.int64),
        labels=np.array([p.genuine for p in chosen], bool),
    )


def crop_images(
    paths: tuple[Path, ...], spec: AlignSpec, config: FacegateConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Detect and align each image (the face nearest the centre, quality gate applied):
    crops (M, S, S, 3) uint8 (zeros where none) and ``found`` (M,) bool."""
    from facegate.face.pipeline import FacePipeline

    pipeline = FacePipeline(config.face, spec)
    crops = np.zeros((len(paths), spec.size, spec.size, 3), np.uint8)
    found = np.zeros(len(paths), bool)
    for k, path in enumerate(paths):
        result = pipeline.process_file(path, select="center")
        if result.face is not None:
            crops[k] = result.face.crop
            found[k] = True
    return crops, found


# -- benchmarks and the promotion rule ---------------------------------------------------


def benchmark(
    scores: np.ndarray, labels: np.ndarray, threshold: float, far_weight: float
) -> dict[str, float | int]:
    """Rates of one model on one pair set at its door threshold: ``far``, ``frr`` and ``cost``
    (far_weight * far + frr) in score-free units, plus ``auc`` and ``eer`` (all fractions)."""
    from facegate.training import metrics

    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    accepted = s >= threshold
    far = float(accepted[~y].mean())
    frr = float((~accepted[y]).mean())
    return {
        "pairs": int(y.size),
        "genuine_pairs": int(y.sum()),
        "impostor_pairs": int((~y).sum()),
        "threshold": float(threshold),
        "far": far,
        "frr": frr,
        "cost": far_weight * far + frr,
        "auc": metrics.auc(s, y),
        "eer": metrics.eer(s, y),
    }


@dataclass(frozen=True)
class Verdict:
    """Whether to promote, and why (one line for the registry)."""

    promote: bool
    why: str


def compare(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], far_weight: float
) -> Verdict:
    """Promote only when ``new`` is not worse than ``old`` on every shared benchmark.

    Worse means a higher weighted error ``far_weight * FAR + FRR`` at each model's own door
    threshold, or an equal one with an AUC lower by more than AUC_TOLERANCE.
    """
    shared = [name for name in old if name in new]
    if not shared:
        return Verdict(False, "no benchmark to compare old and new on")
    notes: list[str] = []
    worse: list[str] = []
    for name in shared:
        o, n = old[name], new[name]
        note = (
            f"{name}: FAR {o['far']:.4f}->{n['far']:.4f}, FRR {o['frr']:.4f}->{n['frr']:.4f}, "
            f"AUC {o['auc']:.4f}->{n['auc']:.4f}"
        )
        notes.append(note)
        if n["cost"] > o["cost"] + _EPS:
            worse.append(f"{name} weighted error {o['cost']:.4f}->{n['cost']:.4f}")
        elif abs(n["cost"] - o["cost"]) <= _EPS and n["auc"] < o["auc"] - AUC_TOLERANCE:
            worse.append(f"{name} AUC {o['auc']:.4f}->{n['auc']:.4f}")
    weights = f"(a false accept weighs {far_weight:g} false rejects)"
    if worse:
        return Verdict(False, f"worse on {'; '.join(worse)} {weights}; " + "; ".join(notes))
    return Verdict(True, f"not worse on {', '.join(shared)} {weights}; " + "; ".join(notes))


def site_scores(model: LoadedModel, split: SiteSplit) -> tuple[np.ndarray, np.ndarray]:
    """Scores (P,) and labels (P,) of every held-out image against every training image."""
    held = model.embed(fit_crops(split.held_crops, model.input_size))
    train = model.embed(fit_crops(split.train_crops, model.input_size))
    scores = model.head.pair_scores(held[:, None, :], train[None, :, :])
    labels = split.held_labels[:, None] == split.train_labels[None, :]
    return scores.ravel(), labels.ravel()


def evaluate_models(
    models: dict[str, LoadedModel],
    split: SiteSplit,
    lfw: LfwPairs | None,
    config: FacegateConfig,
    lfw_crops: dict[Any, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Benchmarks of each named model on the same pairs: name -> benchmark -> numbers.

    LFW pairs are kept only where the crops of both images were found for every crop layout
    in ``lfw_crops`` (AlignSpec -> (crops, found), filled here; pass one dict to evaluate
    models in separate calls on the same pairs).
    """
    far_weight = config.scheduler.far_weight
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in models}
    if split.usable:
        for name, model in models.items():
            scores, labels = site_scores(model, split)
            threshold = door_thresholds(config, model.manifest).detection
            out[name][SITE_BENCHMARK] = benchmark(scores, labels, threshold, far_weight)
    if lfw is not None:
        crops = {} if lfw_crops is None else lfw_crops
        for model in models.values():
            spec = model.manifest.align_spec
            if spec not in crops:
                crops[spec] = crop_images(lfw.paths, spec, config)
        found = np.logical_and.reduce([f for _, f in crops.values()])
        keep = found[lfw.a] & found[lfw.b]
        labels = lfw.labels[keep]
        if labels.any() and not labels.all():
            for name, model in models.items():
                emb = model.embed(crops[model.manifest.align_spec][0])
                scores = model.head.pair_scores(emb[lfw.a[keep]], emb[lfw.b[keep]])
                threshold = door_thresholds(config, model.manifest).detection
                out[name][LFW_BENCHMARK] = benchmark(scores, labels, threshold, far_weight)
    return out


# -- the candidate's fate ----------------------------------------------------------------


def judge_candidate(
    registry: Registry,
    candidate: LoadedModel,
    evaluation: dict[str, dict[str, dict[str, Any]]],
    far_weight: float,
    training: dict[str, Any] | None = None,
) -> ModelVersion:
    """Record the candidate with its evaluation, then promote it (re-embedding the galleries
    first) or reject it; the registry's ``why`` says which benchmark decided."""
    from facegate.scheduler.promote import promote

    verdict = compare(evaluation.get("old", {}), evaluation.get("new", {}), far_weight)
    metrics = {"evaluation": evaluation, "training": training or {}}
    sha = candidate.manifest.sha256
    registry.register_model(sha, candidate.manifest.name, candidate.path, metrics)
    if verdict.promote:
        version = promote(registry, candidate, f"promoted by retrain: {verdict.why}", metrics)
    else:
        version = registry.reject_model(sha, f"rejected by retrain: {verdict.why}")
    logger.info("candidate %s %s: %s", sha[:12], version.status, verdict.why)
    return version


# -- the training process ----------------------------------------------------------------


def trainer_command(job_file: Path) -> list[str]:
    """The argv of the training process."""
    return [sys.executable, "-m", "facegate.scheduler.trainer", str(job_file)]


def run_limited(
    command: list[str],
    time_limit_s: float,
    threads: int,
    log_path: Path,
    poll: Callable[[], None] | None = None,
) -> int:
    """Run ``command`` with ``threads`` CPU threads and stdout/stderr to ``log_path``; kill
    its whole process group after ``time_limit_s`` seconds (ModelError). Returns the exit
    status. The memory limit is applied by the process itself (see ``trainer``)."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )
    deadline = time.monotonic() + time_limit_s
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, process_group=0
        )
        try:
            while True:
                try:
                    return process.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if poll is not None:
                        poll()
                    if time.monotonic() > deadline:
                        raise ModelError(
                            f"training exceeded its {time_limit_s:.0f} s limit and was stopped"
                        ) from None
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


@dataclass(frozen=True)
class RetrainResult:
    """What a retrain produced: the candidate's registry record (None when skipped)."""

    version: ModelVersion | None
    message: str


def retrain(
    registry: Registry,
    config: FacegateConfig,
    model: LoadedModel,
    poll: Callable[[], None] | None = None,
    lock: threading.Lock | None = None,
) -> RetrainResult:
    """Fine-tune ``model`` (the active one) on the site in a limited subprocess, evaluate old
    against new, and promote or reject the candidate (see the module doc); ``lock`` is held
    while the candidate is judged and promoted."""
    from facegate.model.tf_runtime import TENSORFLOW_EXTRA, tensorflow_available

    if not tensorflow_available():
        return RetrainResult(None, f"retraining needs TensorFlow: pip install '{TENSORFLOW_EXTRA}'")
    sched = config.scheduler
    split = site_split(registry, sched.retrain_holdout, model.manifest.align_spec)
    if not split.usable:
        return RetrainResult(None, "fewer than two users with three or more images")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    models_dir = Path(registry.data_dir) / MODELS_DIR
    models_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = models_dir / f".retrain-{stamp}"
    work.mkdir(mode=0o700)
    out_dir = models_dir / f"site-{stamp}"
    try:
        np.savez(
            work / SITE_FILE,
            train_crops=split.train_crops,
            train_labels=split.train_labels,
            held_crops=split.held_crops,
            held_labels=split.held_labels,
        )
        job = {
            "base_model": str(model.path),
            "site": str(work / SITE_FILE),
            "out_dir": str(out_dir),
            "result": str(work / RESULT_FILE),
            "config": config.model_dump(mode="json"),
            "name": f"{model.manifest.name}-site-{stamp}",
        }
        job_file = work / JOB_FILE
        job_file.write_text(json.dumps(job), encoding="utf-8")
        log = work / LOG_FILE
        started = time.monotonic()
        status = run_limited(
            trainer_command(job_file), sched.retrain_time_limit_s, sched.retrain_threads, log, poll
        )
        if status != 0:
            raise ModelError(f"training process exited with status {status}: {_log_tail(log)}")
        result = json.loads((work / RESULT_FILE).read_text(encoding="utf-8"))
        from facegate.model.bundle import load_model_dir

        # Loaded on the runtime the door uses: promotion embeds the galleries with it.
        candidate = load_model_dir(
            Path(result["model_dir"]), config.model.runtime, config.model.variant
        )
        training = {**result.get("training", {}), "seconds": round(time.monotonic() - started, 1)}
        with lock or contextlib.nullcontext():  # no gallery refresh while promoting
            version = judge_candidate(
                registry, candidate, result["evaluation"], sched.far_weight, training
            )
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"retrain failed: {err}") from err
    finally:
        # The work folder holds gallery crops (biometric data): never leave it behind.
        shutil.rmtree(work, ignore_errors=True)
    return RetrainResult(
        version, f"candidate {version.sha256[:12]} {version.status}: {version.why}"
    )
