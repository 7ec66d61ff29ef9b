"""``LiteRTEmbedder``: an ``Embedder`` running an exported ``.tflite`` tower on ai-edge-litert.

No TensorFlow here: this module is what a board without TensorFlow imports at run time. The
manifest's pixel transform runs in numpy, so the exported tower takes float32 pixels exactly as
the Keras tower does; a fully integer model's int8/uint8 input and output are (de)quantized here.
With ``flip_average`` the file holds the plain tower and each crop is run beside its mirror
image and the two embeddings averaged: the same tower then also serves the fast variant.
``l2_normalize`` scales each embedding to unit length last, as ``L2Normalize`` does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facegate.errors import ModelError
from facegate.model.embedder import DEFAULT_BATCH_SIZE, check_crops
from facegate.model.manifest import Preprocessing

logger = logging.getLogger(__name__)


class LiteRTEmbedder:
    """An ``Embedder`` running a ``.tflite`` tower (N, S, S, 3) float32 -> (N, D) on LiteRT."""

    def __init__(
        self,
        tflite_path: Path,
        preprocessing: Preprocessing,
        input_size: int,
        embedding_dim: int,
        num_threads: int = 2,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flip_average: bool = False,
        l2_normalize: bool = False,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_path=str(tflite_path), num_threads=num_threads)
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"{tflite_path}: cannot load the LiteRT model: {err}") from err
        self.path = Path(tflite_path)
        self.batch_size = batch_size
        self.flip_average = flip_average
        self.l2_normalize = l2_normalize
        self._input_size = int(input_size)
        self._embedding_dim = int(embedding_dim)
        self._scale = np.float32(preprocessing.scale)
        self._offset = np.asarray(preprocessing.offset, np.float32).reshape(1, 1, 1, 3)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self._input["shape_signature"][1:])
        if shape != (self._input_size, self._input_size, 3):
            raise ModelError(f"{tflite_path}: input shape {shape} does not match the manifest")
        if int(self._output["shape_signature"][-1]) != self._embedding_dim:
            raise ModelError(f"{tflite_path}: embedding dim does not match the manifest")
        # Crops run as one batch (8 crops batched took 20-30% less time than a loop of 8 on
        # the dlib tower); the input is resized and the arena re-planned only when N changes.
        self._batch = -1

    @property
    def input_size(self) -> int:
        """Side S of the square crops ``embed`` takes, in pixels."""
        return self._input_size

    @property
    def embedding_dim(self) -> int:
        """Length D of one embedding."""
        return self._embedding_dim

    def _set_batch(self, n: int) -> None:
        if n == self._batch:
            return
        size = self._input_size
        self._interpreter.resize_tensor_input(self._input["index"], [n, size, size, 3])
        self._interpreter.allocate_tensors()
        self._batch = n

    def _run(self, x: np.ndarray) -> np.ndarray:
        """(n, S, S, 3) float32 preprocessed pixels -> (n, D) float32."""
        self._set_batch(len(x))
        dtype = self._input["dtype"]
        if dtype != np.float32:
            x = _quantize(x, self._input["quantization"], dtype)
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        out: Any = self._interpreter.get_tensor(self._output["index"])
        if out.dtype != np.float32:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return np.array(out, np.float32)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB crops -> (N, D) float32 embeddings, ``batch_size`` at a time."""
        crops = check_crops(crops, self._input_size)
        if len(crops) == 0:
            return np.zeros((0, self._embedding_dim), np.float32)
        parts = []
        for i in range(0, len(crops), self.batch_size):
            x = crops[i : i + self.batch_size].astype(np.float32) * self._scale + self._offset
            if self.flip_average:
                # One invocation for crops and mirrors: cheaper than two of half the size.
                both = self._run(np.concatenate([x, x[:, :, ::-1]]))
                parts.append((both[: len(x)] + both[len(x) :]) * np.float32(0.5))
            else:
                parts.append(self._run(x))
        out = np.concatenate(parts)
        if self.l2_normalize:
            # L2Normalize's epsilon 1e-12 on the squared norm.
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-6))
        return out


def _quantize(x: np.ndarray, params: tuple[float, int], dtype: Any) -> np.ndarray:
    """Float32 -> the integer input of a fully quantized model, with its (scale, zero point)."""
    scale, zero = params
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
