"""Verification latency while a site retrain runs, against idle (target: within 1.5x).

Enrolls a few LFW people with a model (default: the packaged one) in a temporary registry and
times ``Verifier.judge`` on an enrolled person's photo while idle (before and after) and while
the retrain job runs (training subprocess: 1 thread, lower priority, memory-limited); prints
median and p95 of both and writes JSON under bench/results/.

    .venv/bin/python bench/bench_retrain.py [--model DIR] [--people 4] [--images 6] [--idle-s 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEGATE_TEST_DATA", ROOT.parent / "shared" / "data"))
PEOPLE = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Gerhard_Schroeder", "Ariel_Sharon")


def main() -> int:
    """Run the benchmark; print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: packaged)")
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument(
        "--idle-s", type=float, default=20.0, help="idle measuring time before and after"
    )
    args = parser.parse_args()

    from facegate.config import parse_config
    from facegate.daemon.verifier import Verifier
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.face.image_io import load_image
    from facegate.scheduler.jobs import JobContext, run_job
    from facegate.storage.registry import open_registry

    lfw = DATA / "lfw"
    images = lfw / "lfw-deepfunneled"
    if not images.is_dir():
        print(f"LFW not found under {DATA}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="facegate-bench-retrain-"))
    config = parse_config(
        {
            "storage": {"data_dir": str(work)},
            "model": {"path": str(args.model)} if args.model else {},
            "scheduler": {
                "lfw_dir": str(lfw),
                "retrain_epochs": 1,
                "retrain_negatives": 50,
                "retrain_lfw_pairs": 100,
            },
        }
    )
    registry = open_registry(config.storage)
    pipeline, model = load_tools(registry, config)
    for person in PEOPLE[: args.people]:
        files = sorted((images / person).glob("*.jpg"))[: args.images]
        enroll(registry, pipeline, model, person.lower(), files, config)
    verifier = Verifier(pipeline, model, model.manifest.thresholds, margin=0.02)
    verifier.load_gallery(registry.gallery_matrix(model.manifest.sha256))
    frame = load_image(sorted((images / PEOPLE[0]).glob("*.jpg"))[0])
    for _ in range(3):
        verifier.judge(frame)  # warm-up

    def timed() -> float:
        t0 = time.perf_counter()
        verifier.judge(frame)
        return (time.perf_counter() - t0) * 1e3

    def idle_window() -> list[float]:
        end = time.monotonic() + args.idle_s
        values = []
        while time.monotonic() < end:
            values.append(timed())
        return values

    # Idle is sampled before and after, over a window, so both see the box's other load.
    idle = idle_window()
    context = JobContext(registry=registry, config=config, model=lambda: verifier.model)
    result: dict = {}
    job = threading.Thread(target=lambda: result.update(run=run_job("retrain", context)))
    started = time.monotonic()
    job.start()
    busy = []
    while job.is_alive():
        busy.append(timed())
    job.join()
    retrain_s = time.monotonic() - started
    idle += idle_window()
    registry.close()

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "n": len(values),
            "median_ms": float(np.median(values)),
            "p95_ms": float(np.percentile(values, 95)),
        }

    report = {
        "model": model.manifest.name,
        "idle": stats(idle),
        "during_retrain": stats(busy),
        "ratio_median": float(np.median(busy) / np.median(idle)),
        "ratio_p95": float(np.percentile(busy, 95) / np.percentile(idle, 95)),
        "target_ratio": 1.5,
        "retrain_s": round(retrain_s, 1),
        "retrain_outcome": result["run"].outcome,
        "retrain_message": result["run"].message[:300],
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    print(f"model {report['model']}; retrain {report['retrain_s']} s ({report['retrain_outcome']})")
    print(f"{'':<16}{'n':>6}{'median ms':>12}{'p95 ms':>10}")
    for key in ("idle", "during_retrain"):
        row = report[key]
        print(f"{key:<16}{row['n']:>6}{row['median_ms']:>12.1f}{row['p95_ms']:>10.1f}")
    print(
        f"ratio median {report['ratio_median']:.2f}, p95 {report['ratio_p95']:.2f} "
        f"(target <= 1.5); load average {report['load_average'][0]:.1f}"
    )
    out = ROOT / "bench" / "results" / "retrain.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
