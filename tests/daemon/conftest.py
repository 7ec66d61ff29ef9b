"""Fixtures for daemon tests: an identity-sensitive tiny model and an enrolled registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_SIZE = 112
TINY_DIM = 16


@pytest.fixture(scope="session")
def exact_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model whose head scores a crop against itself near 1 and against a
    different face well below: enough to test the daemon's flows, not its accuracy.

    Score = sigmoid(bias - k * L1(a, b)) on unit-norm 16-d embeddings.
    """
    from facegate.face.align import DEFAULT_TEMPLATE
    from facegate.model.bundle import save_model_dir
    from facegate.model.compact import make_compact_embedding
    from facegate.model.manifest import Thresholds
    from facegate.model.siamese import make_siamese

    siamese: Any = make_siamese(make_compact_embedding(TINY_SIZE, TINY_DIM))
    layer = siamese.get_layer("classifier")
    layer.set_weights([np.full((TINY_DIM, 1), -400.0, np.float32), np.array([4.0], np.float32)])
    out = tmp_path_factory.mktemp("models") / "exact"
    save_model_dir(
        siamese,
        out,
        name="exact-tiny",
        arch="compact",
        template=DEFAULT_TEMPLATE,
        thresholds=Thresholds(detection=0.9, verification=0.2),
        training={"data": "none: untrained tower, hand-set head"},
    )
    return out
