"""The Siamese head in numpy: score a probe embedding against many gallery embeddings at once.

The Keras head is ``Dense(1, sigmoid)(|a - b|)``; with its kernel ``w`` (D,) and bias ``b`` the
score of a pair is ``sigmoid(|a - b| . w + b)``. Doing this in numpy over a cached gallery
matrix replaces the seed's one-``predict``-per-gallery-image loop with one matrix operation.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

# Rows per block: a (1024, 128) float32 block (512 KB) stays in L2 through subtract, abs and
# the mat-vec; one (N, D) temporary for a 100k gallery costs 3x the time.
_BLOCK_ROWS = 1024
# From this many rows on, the blocks are shared out among the cores (numpy releases the GIL in
# each block's subtract, abs and mat-vec). bench_decision --quick, matching 100k rows inside a
# decision on 2 cores: 5.8 ms in one thread, 4.8 ms shared out.
_PARALLEL_MIN_ROWS = 16 * _BLOCK_ROWS
_MAX_WORKERS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
# Logit slack under which no float32 sigmoid can still reach the threshold (its rounding moves
# a score by at most ~1.2e-7, i.e. < 0.13 logit even at a threshold of 1 - 1e-6).
_LOGIT_SLACK = 0.25


@dataclass(frozen=True)
class SiameseHead:
    """Weights of the Dense(1, sigmoid) head on the L1 distance: ``kernel`` (D,), ``bias``."""

    kernel: np.ndarray
    bias: float

    def logits(self, probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """Pre-sigmoid scores of ``probe`` (D,) against each row of ``gallery`` (N, D): (N,)
        float32; ``scores`` is the sigmoid of these (monotone: higher is more similar)."""
        gallery = np.asarray(gallery, dtype=np.float32).reshape(-1, self.kernel.shape[0])
        probe = np.asarray(probe, np.float32).reshape(1, -1)
        kernel = np.asarray(self.kernel, np.float32)
        rows = gallery.shape[0]
        logits = np.empty((rows,), np.float32)
        workers = _workers(rows)
        if workers == 1:
            _block_logits(gallery, probe, kernel, logits, 0, rows)
        else:
            # Split on block boundaries: every row is computed exactly as in one thread.
            blocks = -(-rows // _BLOCK_ROWS)
            cuts = [min(rows, (blocks * k // workers) * _BLOCK_ROWS) for k in range(workers + 1)]
            jobs = [
                _shared_pool().submit(_block_logits, gallery, probe, kernel, logits, lo, hi)
                for lo, hi in itertools.pairwise(cuts)
            ]
            for job in jobs:
                job.result()
        logits += np.float32(self.bias)
        return logits

    def scores(self, probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """Similarity of ``probe`` (D,) to each row of ``gallery`` (N, D): (N,) float32 in [0, 1].

        Higher is more similar; 0.5 is the head's own decision boundary.
        """
        return sigmoid(self.logits(probe, gallery))

    def pair_scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores of row-aligned pairs ``a[i]``, ``b[i]`` ((N, D) each, or broadcastable)."""
        logits = np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)) @ self.kernel
        return sigmoid(logits + self.bias)


def _block_logits(
    gallery: np.ndarray,
    probe: np.ndarray,
    kernel: np.ndarray,
    out: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """``out[lo:hi]`` = ``|gallery[lo:hi] - probe| . kernel``, a cache-sized block at a time."""
    # One reused block buffer: no allocation per block, every pass stays in cache.
    buf = np.empty((min(hi - lo, _BLOCK_ROWS), gallery.shape[1]), np.float32)
    for start in range(lo, hi, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, hi)
        work = buf[: stop - start]
        np.subtract(gallery[start:stop], probe, out=work)
        np.abs(work, out=work)
        np.dot(work, kernel, out=out[start:stop])


def _workers(rows: int) -> int:
    if rows < _PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(os.cpu_count() or 1, _MAX_WORKERS))


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_MAX_WORKERS, thread_name_prefix="match")
        return _pool


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The head's float32 sigmoid (monotone non-decreasing), as every score is computed."""
    logits = np.clip(logits, -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def logit_floor(threshold: float) -> float:
    """A logit below which ``sigmoid`` stays under ``threshold`` (a probability), with slack:
    rows under it cannot reach the threshold, rows above it are checked with ``sigmoid``."""
    if threshold <= 0.0:
        return -math.inf
    p = min(max(threshold, 1e-12), 1.0 - 1e-6)
    return math.log(p / (1.0 - p)) - _LOGIT_SLACK
