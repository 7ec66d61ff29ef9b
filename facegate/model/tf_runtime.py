"""The one place that imports TensorFlow and Keras: lazily, quietly, with sane thread counts.

Modules that are TensorFlow by nature (layers, seed, compact, siamese) call ``import_keras()``
at module level; everything else calls it inside the function that needs it, so that
``facegate --help``, the config and the storage layer never pay for TensorFlow.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile
from types import ModuleType

from facegate.errors import ModelError

logger = logging.getLogger(__name__)

# Lines TensorFlow's C++ runtime writes to fd 2 at import time, before absl logging is set up,
# so TF_CPP_MIN_LOG_LEVEL cannot silence them; they are noise on every CLI call.
_IMPORT_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)

_tf: ModuleType | None = None

# The pip extra that brings TensorFlow, Keras and matplotlib (see pyproject.toml).
TENSORFLOW_EXTRA = "facegate[tensorflow]"


def tensorflow_available() -> bool:
    """True when TensorFlow is installed (looked up, not imported: that costs seconds)."""
    if sys.modules.get("tensorflow") is not None:
        return True
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a blocked or half-removed package
        return False


def missing_tensorflow(what: str) -> ModelError:
    """The one-line error for ``what`` (a command or setting) without TensorFlow installed."""
    return ModelError(
        f"{what} needs TensorFlow, which is not installed: pip install '{TENSORFLOW_EXTRA}'"
    )


def require_tensorflow(what: str) -> None:
    """Raise ``missing_tensorflow(what)`` unless TensorFlow is installed."""
    if not tensorflow_available():
        raise missing_tensorflow(what)


def _quiet_environment() -> None:
    """Ask TensorFlow's C++ side to log warnings and errors only (a user setting wins)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_filtered() -> ModuleType:
    """Import tensorflow with fd 2 captured, then replay what is not known import noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
    kept = [line for line in text.splitlines() if not any(n in line for n in _IMPORT_NOISE)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
    return tf


def _set_threads(tf: ModuleType) -> None:
    """Use every core for one op and at most two ops at once (small boxes: 2-4 cores)."""
    cores = os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, cores))
    except RuntimeError:
        # The runtime was already initialised by someone else: its settings stay.
        logger.debug("TensorFlow threads already configured")


def import_tf() -> ModuleType:
    """Import and configure TensorFlow once; returns the ``tensorflow`` module."""
    global _tf
    if _tf is None:
        _quiet_environment()
        try:
            tf = sys.modules.get("tensorflow") or _import_filtered()
        except ImportError as err:
            raise missing_tensorflow("this command") from err
        _set_threads(tf)
        tf.get_logger().setLevel(logging.WARNING)
        _tf = tf
    return _tf


def import_keras() -> ModuleType:
    """Import Keras 3 on the TensorFlow backend (after ``import_tf``); returns ``keras``."""
    import_tf()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras
    except ImportError as err:
        raise missing_tensorflow("this command (Keras)") from err

    return keras
