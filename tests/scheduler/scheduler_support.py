"""Builders for the scheduler tests: tiny real models (one tower, several heads) and a site.

The tower is an untrained compact network (112 px, 16-d, unit-norm); what differs between the
models is the Siamese head ``sigmoid(bias + kernel . |a - b|)``:

* ``exact``: kernel -400, bias 4. A crop against itself scores sigmoid(4) = 0.98; any visible
  difference drives the score to 0, so it accepts almost no impostor (and few genuine pairs).
* ``reversed``: the same head with its sign flipped: identical crops score 0.02, different
  faces near 1. Deliberately worse: it accepts impostors.
* ``lenient``: kernel -1, bias 4: everything scores about 0.98, every impostor is accepted.

All use detection threshold 0.9 and verification 0.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegate.config import FacegateConfig, parse_config
from facegate.storage.registry import Registry

SIZE = 112
DIM = 16
PEOPLE = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Gerhard_Schroeder")
HEADS = {"exact": (-400.0, 4.0), "reversed": (400.0, -4.0), "lenient": (-1.0, 4.0)}


def build_models(
    root: Path,
    seed: int = 0,
    heads: tuple[str, ...] = tuple(HEADS),
    size: int = SIZE,
    template: tuple[tuple[float, float], ...] | None = None,
) -> dict[str, Path]:
    """Save one model directory per named head of HEADS, all on one tower (drawn from
    ``seed``) of ``size`` px cropping with ``template`` (default: DEFAULT_TEMPLATE)."""
    from facegate.face.align import DEFAULT_TEMPLATE
    from facegate.model.bundle import save_model_dir
    from facegate.model.compact import make_compact_embedding
    from facegate.model.manifest import Thresholds
    from facegate.model.siamese import CLASSIFIER_LAYER, make_siamese
    from facegate.model.tf_runtime import import_keras

    import_keras().utils.set_random_seed(seed)
    siamese: Any = make_siamese(make_compact_embedding(size, DIM))
    out = {}
    for name in heads:
        kernel, bias = HEADS[name]
        siamese.get_layer(CLASSIFIER_LAYER).set_weights(
            [np.full((DIM, 1), kernel, np.float32), np.array([bias], np.float32)]
        )
        out[name] = root / f"{name}-{seed}"
        save_model_dir(
            siamese,
            out[name],
            name=f"{name}-{seed}",
            arch="compact",
            template=template or DEFAULT_TEMPLATE,
            thresholds=Thresholds(detection=0.9, verification=0.2),
            training={"data": "none: untrained tower, hand-set head"},
        )
    return out


def person_images(lfw_images: Path, person: str, count: int, start: int = 0) -> list[Path]:
    """``count`` images of one LFW person from the ``start``-th."""
    files = sorted((lfw_images / person).glob("*.jpg"))[start : start + count]
    assert len(files) == count, f"LFW has too few images of {person}"
    return files


def site_config(tmp_path: Path, model_dir: Path, **scheduler: Any) -> FacegateConfig:
    """A config with a private data dir, the given model and scheduler settings."""
    return parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "model": {"path": str(model_dir)},
            # The untrained tower maps faces close together: only true copies are duplicates.
            "enrollment": {"duplicate_similarity": 0.99999, "min_images": 3},
            "scheduler": scheduler,
        }
    )


@dataclass
class Site:
    """An enrolled site: config, registry, the model galleries were enrolled with."""

    config: FacegateConfig
    registry: Registry
    model: Any
    pipeline: Any
    lfw_images: Path


def enroll_people(site: Site, people: tuple[str, ...], count: int, start: int = 0) -> None:
    """Enroll each LFW person with ``count`` images (names are lower-case surnames)."""
    from facegate.enrollment.enroll import enroll

    for person in people:
        name = person.split("_")[-1].lower()
        files = person_images(site.lfw_images, person, count, start)
        enroll(site.registry, site.pipeline, site.model, name, files, site.config)
