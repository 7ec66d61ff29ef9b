"""Retraining: the promotion rule, the limits of the training process, and a real retrain
(a tiny model fine-tuned for one epoch in a subprocess) while the verifier keeps answering;
on a LiteRT site the candidate is exported like the active model and served on LiteRT."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scheduler_support import (
    DIM,
    HEADS,
    PEOPLE,
    SIZE,
    Site,
    enroll_people,
    person_images,
    site_config,
)

from facegate.config import FacegateConfig
from facegate.errors import ModelError
from facegate.scheduler.jobs import JobContext, run_job
from facegate.scheduler.retrain import (
    LFW_BENCHMARK,
    SITE_BENCHMARK,
    benchmark,
    compare,
    run_limited,
    site_split,
)
from facegate.scheduler.trainer import training_pairs, weighted_threshold


def _bench(far: float, frr: float, auc: float = 0.9, weight: float = 10.0) -> dict[str, float]:
    return {"far": far, "frr": frr, "auc": auc, "cost": weight * far + frr}


@pytest.mark.parametrize(
    ("old", "new", "promote", "reason"),
    [
        # One more false accept in 100 outweighs five fewer false rejects.
        ({"s": _bench(0.00, 0.10)}, {"s": _bench(0.01, 0.05)}, False, "worse on s weighted"),
        ({"s": _bench(0.01, 0.10)}, {"s": _bench(0.00, 0.15)}, True, "not worse on s"),
        ({"s": _bench(0.0, 0.1)}, {"s": _bench(0.0, 0.1)}, True, "not worse"),
        ({"s": _bench(0.0, 0.1, 0.95)}, {"s": _bench(0.0, 0.1, 0.90)}, False, "s AUC"),
        # Better on the site but worse on the public benchmark: kept out.
        (
            {"s": _bench(0.0, 0.3), "l": _bench(0.01, 0.1)},
            {"s": _bench(0.0, 0.1), "l": _bench(0.02, 0.1)},
            False,
            "worse on l",
        ),
        ({}, {"s": _bench(0.0, 0.0)}, False, "no benchmark"),
    ],
)
def test_compare_promotes_only_when_not_worse(old, new, promote: bool, reason: str) -> None:
    verdict = compare(old, new, far_weight=10.0)
    assert verdict.promote is promote
    assert reason in verdict.why


def test_benchmark_rates_at_threshold() -> None:
    scores = np.array([0.95, 0.92, 0.5, 0.91, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0], bool)
    result = benchmark(scores, labels, 0.9, far_weight=10.0)
    assert result["far"] == pytest.approx(1 / 3)
    assert result["frr"] == pytest.approx(1 / 3)
    assert result["cost"] == pytest.approx(10 / 3 + 1 / 3)


def test_weighted_threshold_avoids_false_accepts() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.75, 0.3, 0.2])
    labels = np.array([1, 1, 1, 1, 0, 0, 0], bool)
    # Accepting the 0.75 impostor (cost 10) is worse than rejecting the 0.7 and 0.6 genuines.
    threshold = weighted_threshold(scores, labels, far_weight=10.0)
    assert 0.75 < threshold <= 0.8
    assert weighted_threshold(scores, labels, far_weight=1.0) < 0.75


def test_training_pairs_are_balanced_and_labelled() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    a, b, y = training_pairs(labels, negatives=5)
    n = len(labels)
    assert y.sum() == 3 + 1 + 1 == (1 - y).sum()
    for i, j, same in zip(a, b, y, strict=True):
        if j >= n:
            assert same == 0  # an LFW face is never a positive
        else:
            assert (labels[i] == labels[j]) == bool(same)


def test_time_limit_kills_the_process(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelError, match="limit"):
        run_limited([sys.executable, "-c", "import time; time.sleep(60)"], 1.0, 1, tmp_path / "l")
    assert time.monotonic() - started < 10


def test_memory_limit_stops_a_greedy_process() -> None:
    code = (
        "from facegate.scheduler.trainer import apply_limits\n"
        "apply_limits(600, 30)\n"
        "block = bytearray(2 * 1024 ** 3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_site_split_holds_out_per_user(site: Site) -> None:
    split = site_split(site.registry, 0.3, site.model.manifest.align_spec)
    assert split.usable
    assert len(split.held_crops) == 3  # one of five images per user
    assert len(split.train_crops) == 12
    assert sorted(set(split.held_labels.tolist())) == sorted(set(split.train_labels.tolist()))
    # Stable across runs: the held-out images are chosen by hash.
    again = site_split(site.registry, 0.3, site.model.manifest.align_spec)
    assert np.array_equal(again.held_crops, split.held_crops)


def test_too_little_site_data_is_skipped(tmp_path: Path, model_dirs, models) -> None:
    from facegate.storage.registry import open_registry

    config = site_config(tmp_path, model_dirs["exact"])
    registry = open_registry(config.storage)
    try:
        context = JobContext(registry=registry, config=config, model=lambda: models["exact"])
        run = run_job("retrain", context)
    finally:
        registry.close()
    assert run.outcome == "skipped"
    assert "fewer than two users" in run.message


def _retrain_config(site: Site, lfw_root: Path) -> FacegateConfig:
    data = site.config.model_dump()
    data["scheduler"].update(
        retrain_epochs=1,
        retrain_negatives=8,
        retrain_lfw_pairs=8,
        lfw_dir=lfw_root,
        retrain_time_limit_s=300.0,
        retrain_memory_mb=6144,
        retrain_threads=1,
    )
    return FacegateConfig.model_validate(data)


@pytest.mark.slow
def test_retrain_runs_while_verification_keeps_answering(
    site: Site, lfw_root: Path, lfw_images: Path
) -> None:
    from facegate.daemon.verifier import Verifier
    from facegate.face.image_io import load_image

    config = _retrain_config(site, lfw_root)
    model = site.model
    verifier = Verifier(site.pipeline, model, model.manifest.thresholds, margin=0.02)
    verifier.load_gallery(site.registry.gallery_matrix(model.manifest.sha256))
    # An enrolled image: the exact model grants it (the crop equals a gallery crop).
    frame = load_image(person_images(lfw_images, PEOPLE[0], 1)[0])
    reloads: list[str] = []
    health: list[tuple[str, str]] = []
    context = JobContext(
        registry=site.registry,
        config=config,
        model=lambda: verifier.model,
        reload=lambda: reloads.append("reload"),
        health=lambda kind, message: health.append((kind, message)),
    )
    result: dict[str, Any] = {}
    job = threading.Thread(target=lambda: result.update(run=run_job("retrain", context)))
    idle = []
    for _ in range(5):
        t0 = time.perf_counter()
        verifier.judge(frame)
        idle.append(time.perf_counter() - t0)

    job.start()
    answers = []
    while job.is_alive():
        t0 = time.perf_counter()
        judgement = verifier.judge(frame)
        answers.append((time.perf_counter() - t0, judgement.verdict.reason.value))
        time.sleep(0.05)
    job.join()

    run = result["run"]
    assert run.outcome == "ok", run.message
    assert not health
    # The door answered, correctly, all along (timing targets live in bench/, not here).
    assert len(answers) >= 20
    assert {reason for _, reason in answers} == {"granted"}
    versions = site.registry.list_models()
    assert len(versions) == 2
    candidate = versions[-1]
    assert candidate.status in ("active", "rejected")
    assert candidate.why.startswith(("promoted by retrain", "rejected by retrain"))
    evaluation = candidate.metrics["evaluation"]
    for side in ("old", "new"):
        assert set(evaluation[side]) == {SITE_BENCHMARK, LFW_BENCHMARK}
    training = candidate.metrics["training"]
    assert training["epochs"] == 1 and training["lfw_negatives"] > 0
    assert training["trained"] == "head only"
    assert reloads == (["reload"] if candidate.active else [])
    # The work folder (gallery crops) is gone; the candidate's directory stays for rollback.
    models_dir = Path(site.registry.data_dir) / "models"
    assert not list(models_dir.glob(".retrain-*"))
    assert Path(candidate.path).is_dir()


def test_stopping_the_service_stops_a_retrain(site: Site, lfw_root: Path) -> None:
    config = _retrain_config(site, lfw_root)
    health: list[tuple[str, str]] = []
    context = JobContext(
        registry=site.registry,
        config=config,
        model=lambda: site.model,
        health=lambda kind, message: health.append((kind, message)),
    )
    timer = threading.Timer(1.0, context.stopping.set)
    timer.start()
    started = time.monotonic()
    run = run_job("retrain", context)
    timer.join()
    assert time.monotonic() - started < 30
    assert run.outcome == "failed" and "shutting down" in run.message
    assert [kind for kind, _ in health] == ["job_failed"]
    assert len(site.registry.list_models()) == 1  # no candidate, the active model untouched
    assert not list((Path(site.registry.data_dir) / "models").glob(".retrain-*"))


@pytest.fixture
def litert_site(
    tmp_path: Path, model_dirs: dict[str, Path], pipeline: Any, lfw_images: Path
) -> Iterator[Site]:
    """The ``site`` on runtime litert: a copy of the exact model with an int8 export
    (calibrated on a fourth person's faces), three people enrolled on LiteRT."""
    from facegate.model.bundle import load_model_dir
    from facegate.model.export import export_tflite
    from facegate.storage.registry import open_registry

    model_dir = tmp_path / "exact-litert"
    shutil.copytree(model_dirs["exact"], model_dir)
    faces = [pipeline.process_file(p).face for p in person_images(lfw_images, PEOPLE[3], 6)]
    crops = np.stack([face.crop for face in faces if face is not None])
    export_tflite(load_model_dir(model_dir), model_dir, "int8", crops)
    data = site_config(tmp_path, model_dir).model_dump()
    data["model"]["runtime"] = "litert"
    config = FacegateConfig.model_validate(data)
    registry = open_registry(config.storage)
    built = Site(config, registry, load_model_dir(model_dir, "litert"), pipeline, lfw_images)
    try:
        enroll_people(built, PEOPLE[:3], 5)
        yield built
    finally:
        registry.close()


@pytest.mark.slow
def test_litert_site_serves_the_exported_candidate(
    litert_site: Site, lfw_root: Path, lfw_images: Path
) -> None:
    from facegate.daemon.app import follow_registry
    from facegate.daemon.verifier import Verifier
    from facegate.model.litert import LiteRTEmbedder
    from facegate.model.manifest import Manifest
    from facegate.scheduler.promote import activate

    site = litert_site
    config = _retrain_config(site, lfw_root)
    verifier = Verifier(site.pipeline, site.model, site.model.manifest.thresholds, margin=0.02)
    verifier.load_gallery(site.registry.gallery_matrix(site.model.space))
    context = JobContext(registry=site.registry, config=config, model=lambda: verifier.model)
    run = run_job("retrain", context)
    assert run.outcome == "ok", run.message

    candidate = site.registry.list_models()[-1]
    assert candidate.sha256 != site.model.manifest.sha256
    assert candidate.metrics["training"]["litert_exports"] == ["tower-int8.tflite"]
    entry = Manifest.read(Path(candidate.path)).tflite["int8"]
    assert entry["mode"] == "int8-calibrated"  # on the site's own gallery crops
    assert (Path(candidate.path) / entry["file"]).is_file()
    if not candidate.active:  # rejected on its numbers: promote it by hand, as an admin can
        activate(site.registry, candidate.sha256, "test: serve the candidate", "litert")
    # The galleries were embedded by the LiteRT candidate (in the space of its .tflite file,
    # not of its Keras weights), and the daemon switches to it.
    space = entry["sha256"]
    assert len(site.registry.gallery_matrix(space).vectors) == 15
    assert len(site.registry.gallery_matrix(candidate.sha256).vectors) == 0
    follow_registry(site.registry, config, verifier)
    assert verifier.model.manifest.sha256 == candidate.sha256
    assert verifier.model.siamese is None and verifier.model.space == space
    assert isinstance(verifier.model.embedder, LiteRTEmbedder)
    # The stored galleries are the serving LiteRT tower's embeddings of the gallery crops (a
    # Keras-embedded gallery would differ by the int8 rounding).
    from facegate.enrollment.embedding import read_model_crop

    matrix = site.registry.gallery_matrix(space)
    images = {image.id: image for image in site.registry.all_gallery_images()}
    spec = verifier.model.manifest.align_spec
    crops = np.stack(
        [read_model_crop(site.registry, images[int(i)], spec) for i in matrix.image_ids]
    )
    np.testing.assert_allclose(verifier.model.embed(crops), matrix.vectors, atol=1e-6)


@pytest.fixture(scope="module")
def flip_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny flip-averaging, unit-length model with a fast variant (the default's shape),
    both heads the ``exact`` one."""
    from facegate.face.align import DEFAULT_TEMPLATE
    from facegate.model.bundle import save_model_dir
    from facegate.model.compact import make_compact_embedding
    from facegate.model.manifest import Thresholds, Variant
    from facegate.model.resnet import with_flip_average
    from facegate.model.siamese import CLASSIFIER_LAYER, make_siamese

    kernel, bias = HEADS["exact"]
    siamese = make_siamese(with_flip_average(make_compact_embedding(SIZE, DIM), normalize=True))
    siamese.get_layer(CLASSIFIER_LAYER).set_weights(
        [np.full((DIM, 1), kernel, np.float32), np.array([bias], np.float32)]
    )
    out = tmp_path_factory.mktemp("flip") / "flip-exact"
    thresholds = Thresholds(detection=0.9, verification=0.2)
    save_model_dir(
        siamese,
        out,
        name="flip-exact",
        arch="compact",
        template=DEFAULT_TEMPLATE,
        thresholds=thresholds,
        variants={
            "fast": Variant(
                flip_average=False,
                head_kernel=(kernel,) * DIM,
                head_bias=bias,
                thresholds=thresholds,
            )
        },
    )
    return out


def _retrain_flip_site(
    tmp_path: Path, flip_model_dir: Path, lfw_root: Path, lfw_images: Path, variant: str
) -> Any:
    """Enroll three people on the flip model served as ``variant``, retrain; the candidate."""
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    data = site_config(tmp_path, flip_model_dir).model_dump(mode="json")
    data["model"]["variant"] = variant
    config = FacegateConfig.model_validate(data)
    registry = open_registry(config.storage)
    try:
        pipeline, model = load_tools(registry, config)
        assert model.variant == variant
        site = Site(config, registry, model, pipeline, lfw_images)
        enroll_people(site, PEOPLE[:3], 5)
        retrain_config = _retrain_config(site, lfw_root)
        context = JobContext(registry=registry, config=retrain_config, model=lambda: model)
        run = run_job("retrain", context)
        assert run.outcome == "ok", run.message
        return registry.list_models()[-1]
    finally:
        registry.close()


@pytest.mark.slow
def test_a_fast_door_fine_tunes_the_fast_head_only(
    tmp_path: Path, flip_model_dir: Path, lfw_root: Path, lfw_images: Path
) -> None:
    """The candidate keeps the base's full model and carries the fine-tuned fast head."""
    from facegate.model.bundle import load_model_dir
    from facegate.model.manifest import Manifest

    candidate = _retrain_flip_site(tmp_path, flip_model_dir, lfw_root, lfw_images, "fast")
    assert candidate.metrics["training"]["variant"] == "fast"
    assert candidate.metrics["training"]["trained"] == "head only"
    manifest = Manifest.read(Path(candidate.path))
    base = Manifest.read(flip_model_dir)
    fast = manifest.variants["fast"]
    assert fast.training["site_fine_tune"]["variant"] == "fast"
    assert fast.head_kernel != base.variants["fast"].head_kernel
    assert manifest.thresholds == base.thresholds
    # The full model is the base's: same tower, same head.
    old, new = load_model_dir(flip_model_dir), load_model_dir(Path(candidate.path))
    for a, b in zip(old.siamese.get_weights(), new.siamese.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # And the candidate serves its fast variant on the door's runtime.
    assert load_model_dir(Path(candidate.path), variant="fast").variant == "fast"


@pytest.mark.slow
def test_a_full_door_head_retrain_keeps_the_fast_variant(
    tmp_path: Path, flip_model_dir: Path, lfw_root: Path, lfw_images: Path
) -> None:
    """Fine-tuning the full head leaves the shared tower as it was: the fast variant still
    fits it and is carried over unchanged."""
    from facegate.model.manifest import Manifest

    candidate = _retrain_flip_site(tmp_path, flip_model_dir, lfw_root, lfw_images, "full")
    assert candidate.metrics["training"]["trained"] == "head only"
    assert Manifest.read(Path(candidate.path)).variants == Manifest.read(flip_model_dir).variants
