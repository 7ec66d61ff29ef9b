"""The architecture registry: built-in entries, registration rules, no TensorFlow on import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facegate.errors import ModelError
from facegate.model.architectures import (
    ARCHITECTURES,
    get_architecture,
    register_architecture,
)
from facegate.model.manifest import Preprocessing


def test_builtin_architectures() -> None:
    seed, compact = ARCHITECTURES["seed"], ARCHITECTURES["compact"]
    assert seed.input_size == 100
    assert seed.preprocessing == Preprocessing(scale=1 / 255, offset=(0.0, 0.0, 0.0))
    assert compact.input_size == 112


def test_build_at_another_size() -> None:
    model = get_architecture("compact").build_siamese(32)
    assert model.input_shape == [(None, 32, 32, 3), (None, 32, 32, 3)]


def test_default_template_comes_from_the_face_pipeline() -> None:
    from facegate.face.align import default_spec

    assert get_architecture("compact").default_template(112) == tuple(default_spec(112).template)


def test_register_a_new_architecture() -> None:
    def build(size: int) -> None:
        return None

    pre = Preprocessing(scale=1.0)
    try:
        spec = register_architecture("test_arch", build, 64, pre, template=((0.5, 0.5),))
        assert get_architecture("test_arch") is spec
        assert spec.default_template() == ((0.5, 0.5),)
        # Same spec again is fine (a module imported twice); a different one is not.
        register_architecture("test_arch", build, 64, pre, template=((0.5, 0.5),))
        with pytest.raises(ModelError, match="already registered"):
            register_architecture("test_arch", build, 96, pre)
    finally:
        ARCHITECTURES.pop("test_arch", None)


def test_unknown_architecture_lists_the_known() -> None:
    with pytest.raises(ModelError, match=r"known: .*compact.*seed"):
        get_architecture("nope")


def test_registry_import_does_not_import_tensorflow() -> None:
    code = (
        "import sys, facegate.model.architectures, facegate.model.bundle, "
        "facegate.model.embedder; print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
