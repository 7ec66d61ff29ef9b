"""Custom Keras layers of facegate's models: registered and serialisable, never ``Lambda``.

Both layers are registered under the ``facegate`` package so a ``.keras`` file that uses them
loads with ``safe_mode=True`` once this module is imported.
"""

from __future__ import annotations

from typing import Any

from facegate.model.tf_runtime import import_keras

keras = import_keras()
ops = keras.ops


@keras.saving.register_keras_serializable(package="facegate")
class L1Dist(keras.layers.Layer):
    """Element-wise L1 distance ``|a - b|`` of two (N, D) embeddings: (N, D), same dtype."""

    def __init__(self, **kwargs: Any) -> None:
        # The seed called super().__init__() without kwargs, silently dropping name and dtype.
        super().__init__(**kwargs)

    def call(self, input_embedding: Any, validation_embedding: Any) -> Any:
        """Return ``|input_embedding - validation_embedding|``."""
        return ops.abs(input_embedding - validation_embedding)

    def compute_output_shape(
        self, input_embedding_shape: Any, validation_embedding_shape: Any
    ) -> Any:
        """The shape of either input (they must match)."""
        return input_embedding_shape

    def get_config(self) -> dict[str, Any]:
        """The layer's config (no parameters beyond the base Layer's)."""
        return super().get_config()


@keras.saving.register_keras_serializable(package="facegate")
class L2Normalize(keras.layers.Layer):
    """Scale each row to unit L2 norm along ``axis``: (N, D) float -> (N, D), ``||x|| = 1``."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs: Any) -> Any:
        """Return ``inputs / max(||inputs||, sqrt(epsilon))``."""
        squared = ops.sum(ops.square(inputs), axis=self.axis, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Unchanged shape."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """The layer's config: ``axis`` and ``epsilon``."""
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
