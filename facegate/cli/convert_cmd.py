"""``facegate convert-dlib``: build the default model from dlib's face ResNet and LFW.

The command that rebuilds ``facegate/model/default`` (docs/rebuild_default_model.md):
convert the weights from dlib's XML dump, check them against dlib itself, fit the landmark
template that makes facegate's crops match dlib's chips, embed LFW with facegate's own face
pipeline, train the Siamese head, calibrate the thresholds, measure DevTest and save.
Every person of the ``--exclude`` pairs file is kept out of every step but the measurement.
dlib (``dlib-bin``) and ``face_recognition_models`` are needed here only, never at run time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)

DEFAULT_NAME = "dlib-resnet-v1-lfw-head-flip-l2"
# The default model's tower, and the key of its plain view (the fast variant) in the cache.
ARCH = "dlib_resnet_flip_l2"
FAST_KEY = "dlib_resnet_l2"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``convert-dlib``."""
    cmd = subparsers.add_parser(
        "convert-dlib",
        help="build a model from dlib's face ResNet (XML dump) with a head trained on LFW",
    )
    cmd.add_argument("xml", type=Path, help="dlib net_to_xml dump (tools/dlib_export)")
    cmd.add_argument("--lfw", type=Path, required=True, help="LFW lfw-deepfunneled/ tree")
    cmd.add_argument(
        "--exclude",
        type=Path,
        required=True,
        action="append",
        help="protocol pairs file whose people never enter training (repeatable)",
    )
    cmd.add_argument("--out", type=Path, required=True, help="model directory to write")
    cmd.add_argument(
        "--evaluate", type=Path, default=None, help="pairs file to measure (e.g. pairsDevTest)"
    )
    cmd.add_argument("--work", type=Path, default=Path("dlib_work"), help="cache directory")
    cmd.add_argument("--dat", type=Path, default=None, help="the source .dat (for its sha256)")
    cmd.add_argument("--weights-dtype", choices=["float16", "float32"], default="float16")
    cmd.add_argument("--template-images", type=int, default=400)
    cmd.add_argument("--verify-images", type=int, default=32)
    cmd.add_argument(
        "--target-far", type=float, default=1e-3, help="FAR per gallery verification to allow"
    )
    cmd.add_argument(
        "--pair-far",
        type=float,
        default=1e-3,
        help="FAR per comparison for the detection threshold",
    )
    cmd.add_argument(
        "--match-far",
        type=float,
        default=1e-2,
        help="FAR of a lone 1:1 comparison for the pair threshold (facegate verify)",
    )
    cmd.add_argument("--seed", type=int, default=0)
    cmd.set_defaults(handler=run_convert)


def _round_weights(tower: Any, dtype: str) -> None:
    """Round the tower's weights through ``dtype`` in place: what storage will do to them."""
    import numpy as np

    if dtype == "float32":
        return
    for layer in tower.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w.astype(np.float16).astype(np.float32) for w in weights])


def _lfw_paths(root: Path, people: list[str], images: dict[str, tuple[Path, ...]]) -> list[Path]:
    return [p for name in people for p in images[name]]


def _cached_embeddings(cache: Path, paths: list[Path], crop: Any, embedder: Any) -> tuple[Any, Any]:
    """Embeddings and "face found" flags of ``paths``, from ``cache`` when it exists."""
    import numpy as np

    from facegate.training import head

    if cache.is_file():
        data = np.load(cache)
        return data["embeddings"], data["found"]
    embeddings, found = head.embed_images(paths, crop, embedder.embed)
    np.savez(cache, embeddings=embeddings, found=found)
    return embeddings, found


def _operating_points(
    embeddings: Any, labels: Any, cal_idx: Any, cal_scores: Any, cal: Any, scorer: Any
) -> list[dict[str, Any]]:
    """Gallery FAR/FRR on the calibration people for a few (detection, verification) pairs."""
    from facegate.training import calibrate

    points = []
    for pair_far in (1e-2, 3e-3, 1e-3):
        detection = calibrate.threshold_at_far(cal_scores[cal.labels == 0], pair_far)
        trials = calibrate.simulate_galleries(
            embeddings[cal_idx], labels[cal_idx], scorer.scores, detection, seed=1
        )
        point: dict[str, Any] = {"pair_far_target": pair_far, "detection": round(detection, 6)}
        for share in (0.3, 0.5, 0.7, 1.0):
            far, frr = trials.rates(share)
            point[f"verification_{share:.1f}"] = {"far": far, "frr": frr}
        points.append(point)
    return points


@dataclass
class _HeadData:
    """The training images (paths, identity labels), how to crop them, where to cache."""

    paths: list[Path]
    labels: Any
    crop: Any
    work: Path
    key_parts: list[str]


@dataclass
class _HeadFit:
    """A tower's fitted Siamese head, its thresholds, provenance and DevTest metrics."""

    tower: Any
    kernel: Any
    bias: float
    thresholds: Any
    head: dict[str, Any]
    calibration: dict[str, Any]
    metrics: dict[str, Any]
    no_face: int


def _fit_head(tower: Any, arch: str, data: _HeadData, args: argparse.Namespace) -> _HeadFit:
    """Embed the training images with ``tower``, train the head on 80 % of the people,
    calibrate the thresholds on the other 20 % and measure ``args.evaluate``."""
    import numpy as np

    from facegate.model.embedder import TensorFlowEmbedder
    from facegate.model.manifest import Thresholds
    from facegate.model.resnet import PREPROCESSING
    from facegate.model.scoring import SiameseHead
    from facegate.training import calibrate, head
    from facegate.training.lfw import identity_checksum, parse_pairs
    from facegate.training.metrics import verification_report

    embedder = TensorFlowEmbedder(tower, PREPROCESSING)
    labels = data.labels
    key = identity_checksum([arch, *data.key_parts])[:12]
    embeddings, found = _cached_embeddings(
        data.work / f"train_{key}.npz", data.paths, data.crop, embedder
    )
    logger.info("%s: training images %d, no face in %d", arch, len(data.paths), int((~found).sum()))

    held = head.split_people(labels, 0.2, seed=args.seed)
    train_idx, cal_idx = np.flatnonzero(~held), np.flatnonzero(held)
    train_pairs = head.sample_pairs(labels[train_idx], 20000, 20000, seed=args.seed)
    train_pairs = head.PairSet(
        train_idx[train_pairs.a], train_idx[train_pairs.b], train_pairs.labels
    )
    kernel, bias, losses = head.train_head(embeddings, train_pairs, head.HeadConfig(seed=args.seed))
    scorer = SiameseHead(kernel=kernel, bias=bias)
    cal = head.sample_pairs(labels[cal_idx], 5000, 50000, seed=args.seed + 1)
    cal = head.PairSet(cal_idx[cal.a], cal_idx[cal.b], cal.labels)
    cal_scores = scorer.pair_scores(embeddings[cal.a], embeddings[cal.b])
    folds = np.arange(len(cal)) % 10
    head_report = verification_report(cal_scores, cal.labels, folds, 0.5)
    # Plain Euclidean distance for comparison, at its own threshold for the same FAR as the
    # pair threshold (dlib's 0.6 is for its unnormalised descriptors).
    euclid_cal = head.euclidean_scores(embeddings, cal)
    euclid_threshold = calibrate.threshold_at_far(euclid_cal[cal.labels == 0], args.match_far)
    euclid_report = verification_report(euclid_cal, cal.labels, folds, euclid_threshold)
    detection = calibrate.threshold_at_far(cal_scores[cal.labels == 0], args.pair_far)
    pair_far, pair_frr = calibrate.rates_at(cal_scores, cal.labels, detection)
    trials = calibrate.simulate_galleries(
        embeddings[cal_idx], labels[cal_idx], scorer.scores, detection, seed=args.seed
    )
    verification, table = calibrate.choose_verification(trials, args.target_far)
    gallery_far, gallery_frr = trials.rates(verification)
    pair = calibrate.threshold_at_far(cal_scores[cal.labels == 0], args.match_far)
    match_far, match_frr = calibrate.rates_at(cal_scores, cal.labels, pair)
    thresholds = Thresholds(
        detection=round(detection, 6), verification=verification, pair=round(pair, 6)
    )
    operating_points = _operating_points(embeddings, labels, cal_idx, cal_scores, cal, scorer)

    metrics: dict[str, Any] = {}
    if args.evaluate is not None:
        pairs = parse_pairs(args.evaluate)
        files = sorted({p for pair in pairs.pairs for p in pair.paths(args.lfw)})
        eval_emb, eval_found = _cached_embeddings(
            data.work / f"eval_{Path(args.evaluate).stem}_{key}.npz", files, data.crop, embedder
        )
        row = {p: i for i, p in enumerate(files)}
        a = np.array([row[pair.paths(args.lfw)[0]] for pair in pairs.pairs])
        b = np.array([row[pair.paths(args.lfw)[1]] for pair in pairs.pairs])
        y = np.array([pair.genuine for pair in pairs.pairs])
        scores = scorer.pair_scores(eval_emb[a], eval_emb[b])
        report = verification_report(scores, y, np.arange(len(y)) % 10, thresholds.one_to_one)
        door_far, door_frr = calibrate.rates_at(scores, y, thresholds.detection)
        report["door"] = {
            "threshold": thresholds.detection,
            "accuracy": float(np.mean((scores >= thresholds.detection) == y)),
            "far": door_far,
            "frr": door_frr,
        }
        report["no_face"] = int((~eval_found).sum())
        report["accuracy_at_0.5"] = float(np.mean((scores >= 0.5) == y))
        for point in operating_points:
            accepted = scores >= point["detection"]
            report[f"accuracy_at_pair_far_{point['pair_far_target']:g}"] = float(
                np.mean(accepted == y)
            )
        report["euclidean"] = verification_report(
            -np.linalg.norm(eval_emb[a] - eval_emb[b], axis=1),
            y,
            np.arange(len(y)) % 10,
            euclid_threshold,
        )
        metrics[Path(args.evaluate).stem] = report
        logger.info("%s %s: %s", arch, args.evaluate, json.dumps(report))

    return _HeadFit(
        tower=tower,
        kernel=kernel,
        bias=float(bias),
        thresholds=thresholds,
        head={
            "loss": "binary cross-entropy",
            "optimizer": "Adam",
            "epochs": head.HeadConfig().epochs,
            "learning_rate": head.HeadConfig().learning_rate,
            "weight_decay": head.HeadConfig().weight_decay,
            "pairs": len(train_pairs),
            "final_loss": losses[-1],
            "people": int(np.unique(labels[train_idx]).size),
        },
        calibration={
            "people": int(np.unique(labels[cal_idx]).size),
            "pairs": len(cal),
            "match_far_target": args.match_far,
            "match_far": match_far,
            "match_frr": match_frr,
            "pair_far_target": args.pair_far,
            "pair_far": pair_far,
            "pair_frr": pair_frr,
            "gallery_far_target": args.target_far,
            "gallery_far": gallery_far,
            "gallery_frr": gallery_frr,
            "gallery_sizes": list(trials.gallery_sizes),
            "gallery_trials": int(trials.genuine.size),
            "verification_table": table,
            "operating_points": operating_points,
            "head_report": head_report,
            "euclidean_report": euclid_report,
        },
        metrics=metrics,
        no_face=int((~found).sum()),
    )


def run_convert(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Handler of ``facegate convert-dlib``."""
    from facegate.model.tf_runtime import require_tensorflow

    require_tensorflow("facegate convert-dlib")
    import numpy as np

    from facegate.face.image_io import load_image
    from facegate.face.pipeline import FacePipeline
    from facegate.face.types import AlignSpec
    from facegate.model.bundle import save_model_dir, sha256_file
    from facegate.model.manifest import FAST, Variant
    from facegate.model.resnet import INPUT_SIZE, PREPROCESSING, plain_view, with_flip_average
    from facegate.model.siamese import CLASSIFIER_LAYER, make_siamese
    from facegate.training.datasets import LABELLED_MIN_SCORE, labelled_crop
    from facegate.training.dlib_convert import (
        DLIB_LICENCE,
        DLIB_MODEL_SHA256,
        DlibReference,
        chip_landmarks,
        convert_dlib_xml,
        dlib_models_dir,
        fit_template,
        max_abs_diff,
    )
    from facegate.training.lfw import identity_checksum, index_tree, protocol_people

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    excluded: set[str] = set()
    for path in args.exclude:
        excluded |= protocol_people(path)
    index = index_tree(args.lfw, exclude=excluded)
    people = sorted(index.identities)
    paths = _lfw_paths(args.lfw, people, index.identities)
    labels = np.array([i for i, name in enumerate(people) for _ in index.identities[name]])
    rng = np.random.default_rng(args.seed)

    # 1. Convert and check against dlib on dlib's own chips.
    tower = convert_dlib_xml(args.xml)
    reference = DlibReference.load()
    sample = rng.choice(len(paths), size=args.verify_images, replace=False)
    chips = []
    for i in sample:
        rgb = load_image(paths[i])
        shape = reference.shape(rgb)
        if shape is not None:
            chips.append(reference.chip(rgb, shape))
    chips_arr = np.stack(chips)
    dlib_desc = reference.descriptors(chips)
    diff32 = max_abs_diff(tower, chips_arr, dlib_desc)
    _round_weights(tower, args.weights_dtype)
    diff_stored = max_abs_diff(tower, chips_arr, dlib_desc)
    logger.info(
        "max |keras - dlib|: %.2e float32, %.2e %s", diff32, diff_stored, args.weights_dtype
    )

    # 2. The template: facegate's landmarks mapped into dlib's chips (training people only).
    # The same pipeline and labelled-face rule as ``facegate evaluate`` (no refinement).
    # Template fitting uses only its detector; the spec is a placeholder until fitted.
    pipeline = FacePipeline(config.face, AlignSpec(size=INPUT_SIZE, template=((0, 0), (1, 0))))
    sample = rng.choice(len(paths), size=args.template_images, replace=False)
    points = [chip_landmarks(load_image(paths[i]), reference, pipeline) for i in sample]
    fit = fit_template([p for p in points if p is not None])
    logger.info("template %s (spread %s px, %d faces)", fit.template, fit.spread, fit.faces)
    pipeline = FacePipeline(config.face, AlignSpec(size=INPUT_SIZE, template=fit.template))

    # 3-4. Embed with facegate's own pipeline, fit the head, calibrate and measure: for the
    # flip-averaging tower and, as the fast variant, for the plain tower inside it (both
    # scaled to unit length).
    def crop(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        return labelled_crop(pipeline, rgb)

    rule = f"labelled_crop>={LABELLED_MIN_SCORE}"
    data = _HeadData(paths, labels, crop, work, [args.weights_dtype, rule, *map(str, fit.template)])
    full_tower = with_flip_average(tower, normalize=True)
    full = _fit_head(full_tower, ARCH, data, args)
    fast = _fit_head(plain_view(full_tower), FAST_KEY, data, args)
    variants = {
        FAST: Variant(
            flip_average=False,
            head_kernel=tuple(float(v) for v in fast.kernel),
            head_bias=float(fast.bias),
            thresholds=fast.thresholds,
            training={"head": fast.head, "calibration": fast.calibration},
            metrics=fast.metrics,
        )
    }

    # 5. The Siamese model around the tower, the head's weights in its classifier.
    siamese = make_siamese(full.tower)
    siamese.get_layer(CLASSIFIER_LAYER).set_weights(
        [full.kernel.reshape(-1, 1), np.array([full.bias])]
    )
    training = {
        "source": {
            "file": "dlib_face_recognition_resnet_model_v1.dat (face_recognition_models 0.3.0)",
            "sha256": sha256_file(args.dat) if args.dat else DLIB_MODEL_SHA256,
            "licence": DLIB_LICENCE,
            "conversion": "tools/dlib_export/dlib_to_xml + facegate convert-dlib",
            "max_abs_diff_vs_dlib_float32": diff32,
            f"max_abs_diff_vs_dlib_{args.weights_dtype}": diff_stored,
            "verified_chips": len(chips),
        },
        "data": "LFW deep-funneled, identity labels",
        "exclusion_rule": "every person in " + ", ".join(Path(p).name for p in args.exclude),
        "excluded_people": len(excluded),
        "excluded_sha256": identity_checksum(excluded),
        "train_people": len(people),
        "train_images": len(paths),
        "train_images_no_face": full.no_face,
        "template_fit": {"images": fit.faces, "spread_px": list(fit.spread)},
        "head": full.head,
        "calibration": full.calibration,
    }
    dlib_models_dir()  # fails early, before writing, if the reference package vanished
    manifest = save_model_dir(
        siamese,
        args.out,
        name=DEFAULT_NAME,
        arch=ARCH,
        template=fit.template,
        preprocessing=PREPROCESSING,
        thresholds=full.thresholds,
        training=training,
        metrics=full.metrics,
        weights_dtype=args.weights_dtype,
        variants=variants,
    )
    print(
        json.dumps(
            {
                "out": str(args.out),
                "sha256": manifest.sha256,
                "thresholds": dataclasses.asdict(full.thresholds),
                "metrics": full.metrics,
                "variants": {
                    name: {"thresholds": dataclasses.asdict(v.thresholds), "metrics": v.metrics}
                    for name, v in variants.items()
                },
            },
            indent=2,
        )
    )
    return 0
