"""Frames to identity verdicts: face pipeline, one embedding per frame, vectorised matching."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from facegate.daemon.decision import (
    BurstDecision,
    BurstJudge,
    DecisionReason,
    FrameVerdict,
    judge_frame,
)
from facegate.daemon.liveness import looks_live
from facegate.daemon.matching import MatchIndex, match_probe
from facegate.daemon.sources import Frame
from facegate.face.pipeline import FacePipeline
from facegate.face.types import FaceResult, Reason
from facegate.model.bundle import LoadedModel
from facegate.model.manifest import Thresholds
from facegate.storage.records import GalleryMatrix, User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent per stage on one frame (detect+align+quality, embed, match)."""

    face_ms: float = 0.0
    embed_ms: float = 0.0
    match_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """``{"face": ms, "embed": ms, "match": ms}`` rounded to 0.1 ms (for the event)."""
        return {
            "face": round(self.face_ms, 1),
            "embed": round(self.embed_ms, 1),
            "match": round(self.match_ms, 1),
        }


@dataclass(frozen=True)
class FrameJudgement:
    """A frame's verdict with what the face pipeline saw (for liveness and captures)."""

    verdict: FrameVerdict
    face: FaceResult
    times: StageTimes


@dataclass(frozen=True)
class BurstOutcome:
    """A burst's identity decision, the last frame judged and every frame's judgement."""

    decision: BurstDecision
    last_frame: Frame | None
    judgements: tuple[FrameJudgement, ...]

    @property
    def times(self) -> StageTimes:
        """Stage times summed over the burst's judged frames."""
        return StageTimes(
            sum(j.times.face_ms for j in self.judgements),
            sum(j.times.embed_ms for j in self.judgements),
            sum(j.times.match_ms for j in self.judgements),
        )


@dataclass(frozen=True)
class _Serving:
    """Everything one frame is judged with; replaced as a whole, never piecemeal."""

    pipeline: FacePipeline
    model: LoadedModel
    thresholds: Thresholds
    index: MatchIndex
    users: dict[int, User]


def _empty_index(model: LoadedModel) -> MatchIndex:
    return MatchIndex.from_gallery(
        GalleryMatrix(
            model_sha256=model.space,
            vectors=np.zeros((0, model.manifest.embedding_dim), np.float32),
            user_ids=np.zeros((0,), np.int64),
            image_ids=np.zeros((0,), np.int64),
        )
    )


class Verifier:
    """Judges frames against the enrolled galleries of the active model.

    The gallery (after a refresh) or the whole model with its gallery (after a promotion) can
    be swapped at any time; a frame, and a burst, is always judged with one consistent model,
    pipeline, thresholds and gallery: embedding spaces are never mixed.
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        model: LoadedModel,
        thresholds: Thresholds,
        margin: float,
    ) -> None:
        self.margin = margin
        self._state = _Serving(pipeline, model, thresholds, _empty_index(model), {})

    @property
    def pipeline(self) -> FacePipeline:
        """The face pipeline in use."""
        return self._state.pipeline

    @property
    def model(self) -> LoadedModel:
        """The model in use."""
        return self._state.model

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds in use."""
        return self._state.thresholds

    @property
    def index(self) -> MatchIndex:
        """The gallery index in use."""
        return self._state.index

    def user(self, user_id: int) -> User | None:
        """The registry record of an indexed user."""
        return self._state.users.get(user_id)

    def load_gallery(self, gallery: GalleryMatrix) -> None:
        """Replace the gallery index; refuses embeddings of another model (never mix spaces)."""
        state = self._state
        self.swap_model(state.pipeline, state.model, state.thresholds, gallery)

    def swap_model(
        self,
        pipeline: FacePipeline,
        model: LoadedModel,
        thresholds: Thresholds,
        gallery: GalleryMatrix,
    ) -> None:
        """Switch to ``model`` and its own ``gallery`` in one step."""
        if gallery.model_sha256 != model.space:
            raise ValueError(
                f"gallery of embedding space {gallery.model_sha256[:12]} does not match the "
                f"model {model.label}"
            )
        index = MatchIndex.from_gallery(gallery)
        # One reference assignment: readers see the old state or the new one, never a mix.
        self._state = _Serving(pipeline, model, thresholds, index, dict(gallery.users))
        logger.info(
            "serving model %s: %d users, %d embeddings",
            model.label,
            len(index.user_ids),
            index.size,
        )

    def judge(self, rgb: np.ndarray, state: _Serving | None = None) -> FrameJudgement:
        """Detect, align, gate, embed and match one (H, W, 3) uint8 RGB frame."""
        state = state or self._state
        t0 = time.perf_counter()
        face = state.pipeline.process(rgb)
        t1 = time.perf_counter()
        if face.face is None:
            reason = (
                DecisionReason.NO_FACE
                if face.reason is Reason.NO_FACE
                else DecisionReason.POOR_QUALITY
            )
            return FrameJudgement(FrameVerdict(reason), face, StageTimes(face_ms=(t1 - t0) * 1e3))
        probe = state.model.embed(face.face.crop[None])[0]
        t2 = time.perf_counter()
        match = match_probe(probe, state.index, state.model.head, state.thresholds)
        verdict = judge_frame(match, state.thresholds, self.margin)
        t3 = time.perf_counter()
        return FrameJudgement(
            verdict, face, StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        )

    def judge_burst(
        self, frames: Iterable[Frame], agreement: int, max_frames: int, liveness: bool
    ) -> BurstOutcome:
        """Judge frames until the burst is confident or ``frames`` runs out.

        With ``liveness``, a grant whose faces are identical or motionless across the burst
        becomes ``no_liveness``.
        """
        state = self._state
        judge = BurstJudge(agreement, max_frames)
        judged: list[FrameJudgement] = []
        decision: BurstDecision | None = None
        last: Frame | None = None
        for frame in frames:
            last = frame
            judged.append(self.judge(frame.image, state))
            decision = judge.add(judged[-1].verdict)
            if decision is not None:
                break
        if decision is None:
            decision = judge.finish()
        faces = [j.face.face for j in judged if j.face.face is not None]
        if decision.reason is DecisionReason.GRANTED and liveness and not looks_live(faces):
            decision = replace(decision, reason=DecisionReason.NO_LIVENESS, user=None)
        return BurstOutcome(decision, last, tuple(judged))
