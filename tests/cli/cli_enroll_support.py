"""Support for the enroll and gallery CLI tests: the enrollment tests' builders, a config
file in tmp_path, and a runner that captures output (imported by those test modules)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def enroll_fixtures() -> ModuleType:
    """tests/enrollment/enroll_fixtures.py (tiny model, LFW people, bad images)."""
    spec = importlib.util.spec_from_file_location(
        "enroll_fixtures", ROOT / "enrollment" / "enroll_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(tmp_path: Path, model_dir: Path, face: dict[str, float]) -> Path:
    """A TOML config with a tmp data dir, the tiny model and a look-alike threshold for it."""
    face_lines = "\n".join(f"{k} = {v}" for k, v in face.items())
    path = tmp_path / "facegate.toml"
    path.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[model]\npath = "{model_dir}"\n'
        f"[face]\n{face_lines}\n"
        "[enrollment]\nmin_images = 3\nlookalike_score = 0.15\n"
    )
    return path
