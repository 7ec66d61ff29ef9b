"""The compact tower: within the parameter budget, unit-norm embeddings, checked arguments."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.errors import ModelError
from facegate.model.compact import make_compact_embedding
from facegate.model.layers import L2Normalize
from facegate.model.siamese import make_siamese


def test_default_tower_is_within_budget() -> None:
    tower = make_compact_embedding()
    assert tower.input_shape == (None, 112, 112, 3)
    assert tower.output_shape == (None, 128)
    assert 300_000 < tower.count_params() <= 5_000_000
    assert isinstance(tower.layers[-1], L2Normalize)
    assert tower.layers[1].name == "input_norm"  # batch norm straight on the aligned input


def test_largest_embedding_is_within_budget() -> None:
    assert make_compact_embedding(112, 512).count_params() <= 5_000_000


def test_embeddings_have_unit_norm() -> None:
    tower = make_compact_embedding(32, 24)
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32) * 255
    out = np.asarray(tower(x, training=False))
    assert out.shape == (4, 24)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_siamese_around_compact_has_the_seed_head() -> None:
    model = make_siamese(make_compact_embedding(32, 8))
    assert model.get_layer("classifier").count_params() == 9
    assert tuple(model.output.shape) == (None, 1)


@pytest.mark.parametrize(("size", "dim"), [(100, 128), (16, 128), (112, 513), (112, 0)])
def test_bad_arguments_are_refused(size: int, dim: int) -> None:
    with pytest.raises(ModelError):
        make_compact_embedding(size, dim)
