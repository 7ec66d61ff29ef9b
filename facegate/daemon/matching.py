"""Matching one probe embedding against every enrolled gallery at once (pure numpy).

The seed compared the probe with each verification image in its own ``predict`` call. Here the
galleries of all active users are one cached (N, D) float32 matrix (the registry's
``GalleryMatrix``) whose rows are grouped by owner, so one frame costs one embedding plus one
vectorised head evaluation over N rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegate.model.manifest import Thresholds
from facegate.model.scoring import SiameseHead
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

    Users are ranked by share of matching images, then by best score; only the top two are
    kept (that is all the decision needs). Costs O(N * D).
    """
    if gallery.size == 0:
        return FrameMatch(ranked=())
    scores = head.scores(probe, gallery.embeddings)
    matched = (scores >= thresholds.detection).astype(np.float32)
    starts = gallery.starts
    shares = np.add.reduceat(matched, starts) / gallery.counts
    best = np.maximum.reduceat(scores, starts)
    mean = np.add.reduceat(scores, starts) / gallery.counts
    order = np.lexsort((-best, -shares))
    ranked = tuple(
        UserScore(
            index=int(i),
            user_id=gallery.user_ids[i],
            name=gallery.user_names[i],
            share=float(shares[i]),
            best=float(best[i]),
            mean=float(mean[i]),
        )
        for i in order[:2]
    )
    return FrameMatch(ranked=ranked)
