"""Benchmark verification end to end: per-stage latency per architecture, and the seed's loop.

Usage: python bench/bench_pipeline.py [--quick] [--arch NAME ...] [--model DIR ...]
                                      [--no-default] [--lfw DIR] [--out FILE]

On a 640x480 frame with an LFW face pasted in, times each stage of facegate's verification for
each architecture (untrained weights are fine for latency), the packaged default model under
both runtimes (TensorFlow, and LiteRT with its int8 tower), full and as its fast variant (no
mirror averaging), and each model directory given:
detect (BlazeFace on the frame), align (landmark refinement, similarity warp, quality
measures), embed (one crop through the tower) and compare (the numpy Siamese head against a
cached 50-row gallery matrix). Then, in the same run, the seed's way of verifying with the
seed architecture (for each of 50 verification images, read and resize the input and the
verification JPEG and call ``model.predict`` on the pair) and, where it is installed, the
face_recognition library (dlib HOG detector, 5-point landmarks, ResNet encoding, distances to
50 gallery encodings) on the same frame. Prints a table and writes JSON (default
bench/results/pipeline.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facegate.config import FaceConfig  # noqa: E402
from facegate.face.pipeline import FacePipeline  # noqa: E402
from facegate.face.types import AlignSpec  # noqa: E402
from facegate.model.architectures import ARCHITECTURES, get_architecture  # noqa: E402
from facegate.model.embedder import TensorFlowEmbedder  # noqa: E402
from facegate.model.scoring import SiameseHead  # noqa: E402

logger = logging.getLogger("bench_pipeline")

PERSON = "George_W_Bush"  # 530 images: a probe and a 50-image gallery of one person
GALLERY_SIZE = 50
FRAME_H, FRAME_W = 480, 640
STAGES = ("detect", "align", "embed", "compare")


def default_lfw() -> Path:
    """LFW's image tree from FACEGATE_TEST_DATA (default ../shared/data)."""
    data = Path(os.environ.get("FACEGATE_TEST_DATA", ROOT.parent / "shared" / "data"))
    return data / "lfw" / "lfw-deepfunneled"


def make_frame(face: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 640x480 RGB frame: smooth random background with the 250x250 LFW image in it."""
    rng = np.random.default_rng(seed)
    blobs = rng.integers(40, 200, (6, 8, 3)).astype(np.uint8)
    frame = cv2.resize(blobs, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
    y, x = (FRAME_H - face.shape[0]) // 2, (FRAME_W - face.shape[1]) // 3
    frame[y : y + face.shape[0], x : x + face.shape[1]] = face
    return frame


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


Sample = tuple[float, float]  # (wall ms, process CPU ms)


def timed(samples: list[Sample], fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args), append its (wall, CPU) time in ms to ``samples``, return its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    samples.append(((time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3))
    return result


def summary(samples: list[Sample]) -> dict[str, float]:
    """Median and 95th percentile of wall ms, and median process CPU ms (all threads).

    CPU time is the steadier figure on a shared box: waiting for a core is not counted.
    """
    wall = [w for w, _ in samples]
    return {
        "median_ms": round(statistics.median(wall), 3),
        "p95_ms": round(float(np.percentile(wall, 95)), 3),
        "cpu_median_ms": round(statistics.median(c for _, c in samples), 3),
        "n": len(samples),
    }


class Candidate:
    """One thing to time: an embedder, its Siamese head, its crop spec."""

    def __init__(self, label: str, embedder: Any, head: SiameseHead, spec: AlignSpec) -> None:
        self.label = label
        self.embedder = embedder
        self.head = head
        self.spec = spec


def from_architecture(name: str) -> tuple[Candidate, Any]:
    """An untrained architecture at its default size; also returns its Siamese model."""
    arch = get_architecture(name)
    siamese = arch.build_siamese()
    from facegate.model.siamese import CLASSIFIER_LAYER, embedding_tower

    kernel, bias = siamese.get_layer(CLASSIFIER_LAYER).get_weights()
    head = SiameseHead(kernel=kernel.reshape(-1), bias=float(bias[0]))
    spec = AlignSpec(size=arch.input_size, template=arch.default_template())
    embedder = TensorFlowEmbedder(embedding_tower(siamese), arch.preprocessing)
    return Candidate(name, embedder, head, spec), siamese


def from_model_dir(
    path: Path | None, runtime: str = "tensorflow", variant: str = "full"
) -> Candidate:
    """A trained model directory (None: the packaged default), loaded and verified."""
    from facegate.model.bundle import load_model_dir

    model = load_model_dir(path, runtime, variant)
    label = "default" if path is None else model.manifest.name
    if variant != "full":
        label = f"{label} {variant}"
    return Candidate(f"{label} {runtime}", model.embedder, model.head, model.manifest.align_spec)


def gallery_matrix(candidate: Candidate, pipeline: FacePipeline, files: list[Path]) -> np.ndarray:
    """Embeddings (50, D) of the first 50 gallery images that give a usable face."""
    crops = []
    for path in files:
        result = pipeline.process_file(path)
        if result.face is not None:
            crops.append(result.face.crop)
        if len(crops) == GALLERY_SIZE:
            break
    if len(crops) < GALLERY_SIZE:
        raise SystemExit(f"only {len(crops)} usable gallery faces for {candidate.label}")
    return candidate.embedder.embed(np.stack(crops))


def bench_candidate(
    candidate: Candidate, frame: np.ndarray, files: list[Path], repeats: int
) -> dict[str, Any]:
    """Per-stage and end-to-end latency of facegate's verification of ``frame``."""
    pipeline = FacePipeline(FaceConfig(), candidate.spec)
    gallery = gallery_matrix(candidate, pipeline, files)
    times: dict[str, list[Sample]] = {stage: [] for stage in (*STAGES, "total")}

    def detect(rgb: np.ndarray) -> Any:
        tiled = pipeline.config.tiled_detection
        return pipeline.detector.detect(rgb, tiled=tiled, tiles_only_if_empty=True)

    def align(detection: Any) -> Any:
        if pipeline.refine:
            detection = pipeline.detector.refine(frame, detection)
        return pipeline.align(frame, detection)

    for i in range(repeats + 2):
        wall, cpu = time.perf_counter(), time.process_time()
        # As FacePipeline.process does: whole frame (tiles only if it shows no face), then
        # refinement of the chosen face in "align".
        detections = timed(times["detect"], detect, frame)
        if not detections:
            raise SystemExit("no face detected in the benchmark frame")
        detection = max(detections, key=lambda d: d.width)
        face = timed(times["align"], align, detection)
        probe = timed(times["embed"], candidate.embedder.embed, face.crop[None])[0]
        scores = timed(times["compare"], candidate.head.scores, probe, gallery)
        times["total"].append(
            ((time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3)
        )
        if i < 2:  # warm-up: tracing, first-call allocations
            for samples in times.values():
                samples.clear()
    return {
        "stages": {name: summary(samples) for name, samples in times.items()},
        "input_size": candidate.spec.size,
        "embedding_dim": int(gallery.shape[1]),
        "gallery": int(gallery.shape[0]),
        "mean_score": round(float(np.mean(scores)), 4),
    }


def seed_preprocess(path: str) -> Any:
    """The seed's ``preprocess``: read, decode, resize to 100x100, scale to [0, 1]."""
    from facegate.model.tf_runtime import import_tf

    tf = import_tf()
    image = tf.io.decode_jpeg(tf.io.read_file(path))
    return tf.image.resize(image, (100, 100)) / 255.0


def bench_seed_loop(siamese: Any, frame: np.ndarray, files: list[Path], repeats: int) -> dict:
    """The seed's verify(): one ``predict`` per verification image, files read every time."""
    with tempfile.TemporaryDirectory() as tmp:
        # The seed cut a 250x250 region out of the webcam frame and saved it as the input.
        y, x = (FRAME_H - 250) // 2, (FRAME_W - 250) // 3
        input_path = str(Path(tmp) / "input_image.jpg")
        cv2.imwrite(input_path, cv2.cvtColor(frame[y : y + 250, x : x + 250], cv2.COLOR_RGB2BGR))
        verification = [str(p) for p in files[:GALLERY_SIZE]]

        def verify() -> list[float]:
            results = []
            for image in verification:
                input_img = seed_preprocess(input_path)
                validation_img = seed_preprocess(image)
                pair = list(np.expand_dims([input_img, validation_img], axis=1))
                results.append(float(siamese.predict(pair, verbose=0)[0, 0]))
            return results

        siamese.predict(list(np.zeros((2, 1, 100, 100, 3), np.float32)), verbose=0)  # warm-up
        runs = []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            verify()
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        "gallery": GALLERY_SIZE,
        "median_s": round(statistics.median(w for w, _ in runs), 3),
        "cpu_median_s": round(statistics.median(c for _, c in runs), 3),
        "runs_s": [round(w, 3) for w, _ in runs],
    }


def bench_face_recognition(frame: np.ndarray, files: list[Path], repeats: int) -> dict | None:
    """face_recognition (dlib HOG + 5-point landmarks + ResNet) verifying ``frame``; None if
    the library is not installed."""
    try:
        import face_recognition
    except ImportError:
        return None
    gallery = []
    for path in files:
        encodings = face_recognition.face_encodings(face_recognition.load_image_file(str(path)))
        if encodings:
            gallery.append(encodings[0])
        if len(gallery) == GALLERY_SIZE:
            break
    known = np.stack(gallery)
    times: dict[str, list[Sample]] = {"detect": [], "embed": [], "compare": [], "total": []}
    for i in range(repeats + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        boxes = timed(times["detect"], face_recognition.face_locations, frame)
        if not boxes:
            raise SystemExit("face_recognition found no face in the benchmark frame")
        encoding = timed(times["embed"], face_recognition.face_encodings, frame, boxes[:1])[0]
        timed(times["compare"], face_recognition.face_distance, known, encoding)
        times["total"].append(
            ((time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3)
        )
        if i == 0:
            for samples in times.values():
                samples.clear()
    # "embed" here includes dlib's 5-point landmarks, which it needs to cut its chip.
    return {"stages": {name: summary(samples) for name, samples in times.items()}}


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    from facegate.model.tf_runtime import import_keras, import_tf

    load = os.getloadavg() if hasattr(os, "getloadavg") else (None,)
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "tensorflow": import_tf().__version__,
        "keras": import_keras().__version__,
        "opencv": cv2.__version__,
        "load_average_1m": round(load[0], 2) if load[0] is not None else None,
    }


def print_table(results: dict[str, Any]) -> None:
    """The human-readable table."""
    print(f"\nfacegate verification of one 640x480 frame against a {GALLERY_SIZE}-image gallery")
    print(f"{'model':28} {'stage':8} {'median ms':>10} {'p95 ms':>10} {'CPU ms':>10}")
    rows = dict(results["models"])
    if results.get("face_recognition"):
        rows["face_recognition (dlib)"] = results["face_recognition"]
    for label, res in rows.items():
        for stage in (*STAGES, "total"):
            s = res["stages"].get(stage)
            if s is None:
                continue
            print(
                f"{label:28} {stage:8} {s['median_ms']:10.2f} {s['p95_ms']:10.2f} "
                f"{s['cpu_median_ms']:10.2f}"
            )
    seed = results.get("seed_loop")
    if seed:
        ours = results["models"]["seed"]["stages"]["total"]["median_ms"]
        ours_cpu = results["models"]["seed"]["stages"]["total"]["cpu_median_ms"]
        print(
            f"\nseed architecture, {GALLERY_SIZE} gallery images, one verification:\n"
            f"  the seed's loop (one predict per image): {seed['median_s'] * 1000:9.0f} ms wall "
            f"{seed['cpu_median_s'] * 1000:9.0f} ms CPU\n"
            f"  facegate (one embedding, numpy head):    {ours:9.1f} ms wall "
            f"{ours_cpu:9.1f} ms CPU\n"
            f"  speed-up x{seed['median_s'] * 1000 / ours:.0f} (wall)"
        )
    peer = results.get("face_recognition")
    if peer:
        theirs = peer["stages"]["total"]["median_ms"]
        for label, res in results["models"].items():
            if label.startswith("default"):
                ours = res["stages"]["total"]["median_ms"]
                print(f"face_recognition / facegate {label}: x{theirs / ours:.1f} (wall, median)")
    print(f"load average (1 min) at start: {results['machine']['load_average_1m']}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument(
        "--arch", action="append", default=None, help="architecture(s) (default: all registered)"
    )
    parser.add_argument("--model", action="append", type=Path, default=[], help="model dir(s)")
    parser.add_argument("--lfw", type=Path, default=default_lfw())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pipeline.json")
    parser.add_argument("--no-seed-loop", action="store_true", help="skip the seed's loop")
    parser.add_argument("--no-default", action="store_true", help="skip the packaged default model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    repeats, seed_repeats = (10, 1) if args.quick else (50, 3)
    files = sorted((args.lfw / PERSON).glob("*.jpg"))
    if len(files) < GALLERY_SIZE + 10:
        raise SystemExit(f"LFW not found (or incomplete) at {args.lfw}; pass --lfw DIR")
    probe, gallery_files = files[0], files[1:]
    frame = make_frame(read_rgb(probe))
    results: dict[str, Any] = {
        "machine": machine(),
        "frame": [FRAME_H, FRAME_W],
        "repeats": repeats,
        "probe": probe.name,
        "models": {},
    }
    seed_siamese = None
    for name in args.arch or sorted(ARCHITECTURES):
        candidate, siamese = from_architecture(name)
        if name == "seed":
            seed_siamese = siamese
        print(f"timing {name} ...", file=sys.stderr)
        results["models"][name] = {
            "params": int(siamese.count_params()),
            **bench_candidate(candidate, frame, gallery_files, repeats),
        }
    runs: list[tuple[Path | None, str, str]] = [(path, "tensorflow", "full") for path in args.model]
    if not args.no_default:
        runs += [
            (None, runtime, v) for v in ("full", "fast") for runtime in ("tensorflow", "litert")
        ]
    for path, runtime, variant in runs:
        candidate = from_model_dir(path, runtime, variant)
        print(f"timing {candidate.label} ...", file=sys.stderr)
        results["models"][candidate.label] = bench_candidate(
            candidate, frame, gallery_files, repeats
        )
    print("timing face_recognition ...", file=sys.stderr)
    results["face_recognition"] = bench_face_recognition(frame, gallery_files, repeats)
    if seed_siamese is not None and not args.no_seed_loop:
        print("timing the seed's predict loop ...", file=sys.stderr)
        results["seed_loop"] = bench_seed_loop(seed_siamese, frame, gallery_files, seed_repeats)
        ours = results["models"]["seed"]["stages"]["total"]["median_ms"]
        results["seed_loop"]["speedup_vs_facegate"] = round(
            results["seed_loop"]["median_s"] * 1000 / ours, 1
        )
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
