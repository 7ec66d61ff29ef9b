"""The lazy TensorFlow import: one module, quiet, threads configured."""

from __future__ import annotations

import os
import subprocess
import sys

from facegate.model.tf_runtime import import_keras, import_tf


def test_import_tf_is_cached_and_quiet() -> None:
    tf = import_tf()
    assert import_tf() is tf
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] in {"1", "2", "3"}
    assert import_keras().backend.backend() == "tensorflow"


def test_import_prints_nothing_on_stderr() -> None:
    code = "from facegate.model.tf_runtime import import_keras; import_keras()"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0
    assert "oneDNN" not in out.stderr
    assert "absl::InitializeLog" not in out.stderr
