"""Fixtures of the CLI tests: a tiny real model and a runner for ``facegate --config ...``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_enroll_support import enroll_fixtures, write_config

from facegate.cli.main import main

fixtures = enroll_fixtures()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixtures.build_tiny_model(tmp_path_factory.mktemp("cli-model") / "tiny")


@pytest.fixture
def cli(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``facegate --config <tmp> ARGS``; returns (exit code, stdout, stderr)."""
    config = write_config(tmp_path, model_dir, fixtures.TEST_FACE_CONFIG)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *[str(a) for a in args]])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
