"""Switching the active model safely: verify, re-embed every gallery image, then switch.

Promotion stores the new model's embeddings of every gallery image first and switches the
active model in one registry call after, so whoever loads the active model finds its whole
gallery embedded by it: verification never runs with mixed models. The old model's embeddings
stay stored, so a rollback is a switch back (plus embedding images enrolled meanwhile).
Every model is loaded through ``load_model_dir``, which refuses files whose sha256 does not
match the manifest; the manifest's hash must also be the registered one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from facegate.enrollment.embedding import OnUnreadable, embed_gallery, embed_missing
from facegate.errors import ModelError, StorageError
from facegate.storage.records import ModelVersion
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)


def load_version(
    version: ModelVersion, runtime: str = "tensorflow", variant: str = "full"
) -> LoadedModel:
    """Load a registered model (serving ``variant``), refusing files that do not match their
    recorded hash."""
    from facegate.model.bundle import load_model_dir

    if not version.path or not Path(version.path).is_dir():
        raise ModelError(f"model {version.sha256[:12]}: directory {version.path!r} is missing")
    model = load_model_dir(Path(version.path), runtime, variant)
    if model.manifest.sha256 != version.sha256:
        raise ModelError(
            f"model {version.sha256[:12]}: {version.path} now holds model "
            f"{model.manifest.sha256[:12]}; refusing to activate it"
        )
    return model


def promote(
    registry: Registry,
    candidate: LoadedModel,
    why: str,
    metrics: dict | None = None,
) -> ModelVersion:
    """Re-embed every gallery image with ``candidate``, store the embeddings, then make it the
    active model in one registry call. On failure the old model stays active and the
    candidate's partial embeddings are dropped
    (unless it had embeddings before: a former active model)."""
    sha = candidate.manifest.sha256
    registry.register_model(
        sha, candidate.manifest.name, candidate.path, metrics or candidate.manifest.metrics
    )
    active = registry.active_model()
    if active is not None and active.sha256 == sha:
        return active
    # Embeddings are keyed by the space the candidate's runtime produces (see
    # LoadedModel.space); a space that was served before keeps them whatever happens here.
    space = candidate.space
    fresh = not registry.get_embeddings(space)
    try:
        # Every image, each re-derived for the candidate's crop size and template; a file
        # that cannot be read fails the promotion rather than switch to a partial gallery.
        images = registry.all_gallery_images()
        registry.put_embeddings(space, embed_gallery(registry, candidate, images).vectors)
        embed_missing(registry, candidate, OnUnreadable.FAIL)
        version = registry.activate_model(sha, why=why)
    except BaseException:
        if fresh:
            try:
                registry.delete_embeddings(space)
            except StorageError as err:
                logger.warning("could not drop the failed candidate's embeddings: %s", err)
        raise
    logger.info("promoted model %s: %s", candidate.label, why)
    return version


def activate(
    registry: Registry, sha256: str, why: str, runtime: str = "tensorflow", variant: str = "full"
) -> ModelVersion:
    """Verify a registered model's files, re-embed the galleries with it, make it active."""
    version = registry.get_model(sha256)
    model = load_version(version, runtime, variant)
    return promote(registry, model, why, version.metrics)


def rollback_target(registry: Registry) -> ModelVersion:
    """The model ``Registry.rollback_model`` would re-activate (same rule, read-only)."""
    models = registry.list_models()
    current = next((m for m in models if m.active), None)
    options = [
        m
        for m in models
        if not m.active
        and m.promoted_at is not None
        and m.status != "rolled_back"
        and (current is None or current.promoted_at is None or m.promoted_at <= current.promoted_at)
    ]
    if not options:
        raise StorageError("no earlier model version to roll back to")
    return max(options, key=lambda m: (m.promoted_at, m.id))


def rollback(
    registry: Registry, why: str, runtime: str = "tensorflow", variant: str = "full"
) -> ModelVersion:
    """Re-activate the previously promoted model: verify its files, embed images enrolled
    since it was retired (its older embeddings are still stored), then switch back."""
    target = rollback_target(registry)
    model = load_version(target, runtime, variant)
    embed_missing(registry, model, OnUnreadable.FAIL)
    version = registry.rollback_model(why)
    if version.sha256 != target.sha256:  # another process switched models meanwhile
        logger.error(
            "rollback activated %s, not the verified %s", version.sha256[:12], target.sha256[:12]
        )
    logger.info("rolled back to model %s: %s", version.sha256[:12], why)
    return version
