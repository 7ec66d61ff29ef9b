"""Benchmark the face pipeline on LFW: per-stage latency and detection recall.

Usage: python bench/bench_face.py [--lfw DIR] [--images N] [--threads T] [--out FILE]

Prints a table and writes JSON (default bench/results/face.json). Stages: decode (JPEG bytes
to RGB), detect with the short- and full-range BlazeFace models on the 250x250 LFW image and
on 640x480 / 1920x1080 frames with the face pasted in (full range also tiled), landmark
refinement, the 468-point face mesh, alignment to 100x100, quality assessment, and the whole
FacePipeline.process. Recall is the share of frames where a face is found at the right place:
the LFW image itself, and 640x480 / 1920x1080 frames with the LFW image pasted at several
scales (smaller faces).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facegate.config import FaceConfig  # noqa: E402
from facegate.face import align, quality  # noqa: E402
from facegate.face.align import default_spec  # noqa: E402
from facegate.face.detect import FaceDetector, FaceMesh  # noqa: E402
from facegate.face.image_io import decode_image  # noqa: E402
from facegate.face.pipeline import FacePipeline, nearest_centre  # noqa: E402
from facegate.face.types import Detection  # noqa: E402

logger = logging.getLogger("bench_face")

# (frame height, width, scale of the 250 px LFW image pasted in)
RECALL_SETTINGS = [
    (250, 250, 1.0),
    (480, 640, 1.0),
    (480, 640, 0.6),
    (480, 640, 0.4),
    (1080, 1920, 1.5),
    (1080, 1920, 0.8),
]
# The LFW face centre (eye midpoint) in a 250x250 image, pixels.
LFW_FACE_CENTRE = np.array([125.5, 113.0])


def default_lfw() -> Path:
    data = Path(os.environ.get("FACEGATE_TEST_DATA", ROOT.parent / "shared" / "data"))
    return data / "lfw" / "lfw-deepfunneled"


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A face-free frame: smooth colour blobs plus a little noise."""
    blobs = rng.integers(40, 200, (6, 8, 3)).astype(np.uint8)
    base = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    noise = rng.integers(-8, 8, (height, width, 3), dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def pasted(
    rng: np.random.Generator, rgb: np.ndarray, height: int, width: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """The LFW image scaled and pasted at a random place; returns the frame and face centre."""
    if (height, width) == rgb.shape[:2] and scale == 1.0:
        return rgb, LFW_FACE_CENTRE.copy()
    size = round(250 * scale)
    frame = background(rng, height, width)
    x = int(rng.integers(0, width - size + 1))
    y = int(rng.integers(0, height - size + 1))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    frame[y : y + size, x : x + size] = cv2.resize(rgb, (size, size), interpolation=interpolation)
    return frame, LFW_FACE_CENTRE * scale + (x, y)


def found_at(detections: list[Detection], centre: np.ndarray, scale: float) -> bool:
    """True when some detection's eye midpoint is within 20 px x scale of the expected one."""
    for detection in detections:
        eyes = detection.landmarks[:2].mean(axis=0)
        if np.linalg.norm(eyes - centre) < 20 * scale:
            return True
    return False


def timed(samples: list[float], fn: Callable, *args):
    """Call fn(*args), append its wall time in ms to samples, return its result."""
    start = time.perf_counter()
    result = fn(*args)
    samples.append((time.perf_counter() - start) * 1000.0)
    return result


def summary(samples: list[float]) -> dict[str, float]:
    """Median and 95th percentile in ms."""
    if not samples:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "n": 0}
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(float(np.percentile(samples, 95)), 3),
        "n": len(samples),
    }


def run(lfw: Path, count: int, threads: int, seed: int) -> dict:
    """Run every measurement; return the results as a JSON-able dict."""
    files = sorted(lfw.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no LFW images under {lfw}")
    random.Random(seed).shuffle(files)
    files = files[:count]
    rng = np.random.default_rng(seed)
    detectors = {
        "short_range": FaceDetector("short_range", min_score=0.5, num_threads=threads),
        "full_range": FaceDetector("full_range", min_score=0.6, num_threads=threads),
    }
    pipeline = FacePipeline(FaceConfig(), default_spec(100))
    mesh = FaceMesh(num_threads=threads)
    spec = default_spec(100)
    times: dict[str, list[float]] = {
        "decode_jpeg_250": [],
        **{f"detect_{m}_250x250": [] for m in detectors},
        **{f"detect_{m}_640x480": [] for m in detectors},
        "detect_full_range_tiled_640x480": [],
        "detect_full_range_1920x1080": [],
        "detect_full_range_tiled_1920x1080": [],
        "refine_landmarks": [],
        "face_mesh_468": [],
        "align_100": [],
        "quality_assess": [],
        "pipeline_process_250x250": [],
        "pipeline_process_640x480": [],
    }
    variants = [*detectors, "full_range_tiled"]
    hits = {f"{m}@{w}x{h}x{s}": 0 for m in variants for h, w, s in RECALL_SETTINGS}
    landmarks = []
    for path in files:
        data = path.read_bytes()
        rgb = timed(times["decode_jpeg_250"], decode_image, data)
        frame640, _ = pasted(rng, rgb, 480, 640, 1.0)
        frame1080, _ = pasted(rng, rgb, 1080, 1920, 1.0)
        full = detectors["full_range"]
        for name, detector in detectors.items():
            timed(times[f"detect_{name}_250x250"], detector.detect, rgb)
            timed(times[f"detect_{name}_640x480"], detector.detect, frame640)
        timed(times["detect_full_range_tiled_640x480"], full.detect, frame640, True)
        timed(times["detect_full_range_1920x1080"], full.detect, frame1080)
        timed(times["detect_full_range_tiled_1920x1080"], full.detect, frame1080, True)
        for height, width, scale in RECALL_SETTINGS:
            frame, centre = pasted(rng, rgb, height, width, scale)
            for name, detector in detectors.items():
                if found_at(detector.detect(frame), centre, scale):
                    hits[f"{name}@{width}x{height}x{scale}"] += 1
            if found_at(full.detect(frame, tiled=True), centre, scale):
                hits[f"full_range_tiled@{width}x{height}x{scale}"] += 1
        found = detectors["full_range"].detect(rgb)
        if found:
            chosen = nearest_centre(found, 250, 250)
            landmarks.append(chosen.landmarks)
            refined = timed(times["refine_landmarks"], full.refine, rgb, chosen)
            timed(times["face_mesh_468"], mesh.refine_landmarks, rgb, chosen)
            crop = timed(times["align_100"], align.align_face, rgb, refined.landmarks, spec)
            timed(times["quality_assess"], quality.assess, crop)
        timed(times["pipeline_process_250x250"], pipeline.process, rgb, "center")
        timed(times["pipeline_process_640x480"], pipeline.process, frame640)
    recall = {key: round(value / len(files), 4) for key, value in hits.items()}
    return {
        "images": len(files),
        "threads": threads,
        "seed": seed,
        "latency": {key: summary(value) for key, value in times.items()},
        "recall": recall,
        "mean_landmarks_250": np.round(np.mean(landmarks, axis=0), 2).tolist(),
    }


def print_table(results: dict) -> None:
    """The human-readable table."""
    print(f"face pipeline on {results['images']} LFW images, {results['threads']} thread(s)")
    print(f"{'stage':34} {'median ms':>10} {'p95 ms':>10}")
    for key, value in results["latency"].items():
        print(f"{key:34} {value['median_ms']:10.2f} {value['p95_ms']:10.2f}")
    print()
    header = f"{'detection recall (face found in place)':46}"
    print(f"{header} {'short':>7} {'full':>7} {'tiled':>7}")
    for height, width, scale in RECALL_SETTINGS:
        key = f"{width}x{height}x{scale}"
        short = results["recall"][f"short_range@{key}"]
        full = results["recall"][f"full_range@{key}"]
        tiled = results["recall"][f"full_range_tiled@{key}"]
        label = f"{width}x{height} frame, face at {scale:.0%} ({round(250 * scale)} px image)"
        print(f"{label:46} {short:7.1%} {full:7.1%} {tiled:7.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=default_lfw())
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(args.threads)
    results = run(args.lfw, args.images, args.threads, args.seed)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
