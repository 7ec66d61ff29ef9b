"""Matching one probe embedding against every enrolled gallery at once (pure numpy).

The seed compared the probe with each verification image in its own ``predict`` call. Here the
galleries of all active users are one cached (N, D) float32 matrix (the registry's
``GalleryMatrix``) whose rows are grouped by owner, so one frame costs one embedding plus one
vectorised head evaluation over N rows. The result is exact (every row is scored by the head);
only the bookkeeping after it is kept linear, so 100,000 rows cost a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegate.model.manifest import Thresholds
from facegate.model.scoring import SiameseHead, logit_floor, sigmoid
from facegate.storage.records import GalleryMatrix


@dataclass(frozen=True)
class MatchIndex:
    """The registry's gallery matrix prepared for per-user reductions.

    ``embeddings`` is (N, D) float32 with rows grouped by user; ``user_ids`` (U,) are registry
    ids and ``user_names`` their names in row order; ``starts`` (U,) is the first row of each
    user and ``counts`` (U,) how many rows each has (every count is at least 1).
    """

    embeddings: np.ndarray
    user_ids: tuple[int, ...]
    user_names: tuple[str, ...]
    starts: np.ndarray
    counts: np.ndarray
    model_sha256: str

    @classmethod
    def from_gallery(cls, gallery: GalleryMatrix) -> MatchIndex:
        """Group the rows of ``gallery`` by owner (a stable sort, so it costs nothing when the
        registry already returns them grouped)."""
        order = np.argsort(gallery.user_ids, kind="stable")
        owners = gallery.user_ids[order]
        ids, starts, counts = np.unique(owners, return_index=True, return_counts=True)
        return cls(
            embeddings=np.ascontiguousarray(gallery.vectors[order], dtype=np.float32),
            user_ids=tuple(int(i) for i in ids),
            user_names=tuple(gallery.users[int(i)].name for i in ids),
            starts=starts.astype(np.int64),
            counts=counts.astype(np.int64),
            model_sha256=gallery.model_sha256,
        )

    @property
    def size(self) -> int:
        """Number of gallery embeddings (rows)."""
        return int(self.embeddings.shape[0])


@dataclass(frozen=True)
class UserScore:
    """How one user's gallery answered a probe.

    ``share``: fraction of their gallery images whose score passes the detection threshold
    (the seed's "verification" quantity, in [0, 1]); ``best``: their highest comparison score;
    ``mean``: their mean comparison score.
    """

    index: int
    user_id: int
    name: str
    share: float
    best: float
    mean: float


@dataclass(frozen=True)
class FrameMatch:
    """The answer of all galleries to one probe: the two strongest users, strongest first."""

    ranked: tuple[UserScore, ...]

    @property
    def top(self) -> UserScore | None:
        """The strongest candidate, or None with no galleries."""
        return self.ranked[0] if self.ranked else None

    @property
    def runner_up(self) -> UserScore | None:
        """The second strongest candidate, or None."""
        return self.ranked[1] if len(self.ranked) > 1 else None


def match_probe(
    probe: np.ndarray, gallery: MatchIndex, head: SiameseHead, thresholds: Thresholds
) -> FrameMatch:
    """Score ``probe`` (D,) against every gallery row and summarise per user.

    Users are ranked by share of matching images, then by best score (ties: registry order);
    only the top two are kept (that is all the decision needs). Costs one O(N * D) pass over
    the matrix; everything after it is O(N) on logits or O(U) per user.
    """
    if gallery.size == 0:
        return FrameMatch(ranked=())
    logits = head.logits(probe, gallery.embeddings)
    starts, counts = gallery.starts, gallery.counts
    # sigmoid is monotone: a user's best score is the sigmoid of their best logit, and only
    # rows near or over the threshold's logit need a sigmoid to say whether they match.
    best = sigmoid(np.maximum.reduceat(logits, starts))
    near = np.flatnonzero(logits >= logit_floor(thresholds.detection))
    hits = near[sigmoid(logits[near]) >= thresholds.detection]
    owners = np.searchsorted(starts, hits, side="right") - 1
    shares = np.bincount(owners, minlength=len(starts)).astype(np.float32) / counts
    ranked = []
    for i in _top_two(shares, best):
        rows = sigmoid(logits[starts[i] : starts[i] + counts[i]])
        ranked.append(
            UserScore(
                index=i,
                user_id=gallery.user_ids[i],
                name=gallery.user_names[i],
                share=float(shares[i]),
                best=float(best[i]),
                mean=float(rows.mean(dtype=np.float64)),
            )
        )
    return FrameMatch(ranked=tuple(ranked))


def _top_two(shares: np.ndarray, best: np.ndarray) -> list[int]:
    """Indices of the two strongest users by (share, best) descending, lowest index on ties:
    what a stable lexsort would put first, in O(U) instead of O(U log U)."""
    out: list[int] = []
    available = np.ones(shares.shape, bool)
    for _ in range(min(2, shares.size)):
        level = shares[available].max()
        tied = np.flatnonzero(available & (shares == level))
        winner = int(tied[np.argmax(best[tied])])
        out.append(winner)
        available[winner] = False
    return out
