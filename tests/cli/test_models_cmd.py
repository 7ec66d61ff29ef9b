"""``facegate models list|activate|rollback``: versions with hash, status, why; activation
verifies the files; rollback re-activates the previous model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_enroll_support import enroll_fixtures

from facegate.cli.main import main
from facegate.config import StorageConfig
from facegate.model.manifest import Manifest
from facegate.storage.registry import open_registry


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny model directories (different random towers, so different hashes)."""
    build = enroll_fixtures().build_tiny_model
    root = tmp_path_factory.mktemp("models")
    return build(root / "first"), build(root / "second")


@pytest.fixture
def data_dir(tmp_path: Path, two_models: tuple[Path, Path]) -> Path:
    """A registry knowing both models, the first active."""
    data = tmp_path / "data"
    registry = open_registry(StorageConfig(data_dir=data))
    for path in two_models:
        manifest = Manifest.read(path)
        registry.register_model(manifest.sha256, manifest.name, path, {"note": path.name})
    registry.activate_model(Manifest.read(two_models[0]).sha256, why="first model")
    registry.close()
    return data


@pytest.fixture
def cli(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Iterator:
    """Run ``facegate --config <tmp> ARGS``; returns (exit code, stdout, stderr)."""
    config = tmp_path / "facegate.toml"
    config.write_text(f'[storage]\ndata_dir = "{data_dir}"\n')

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _listed(cli) -> dict[str, dict]:
    code, out, _ = cli("models", "list", "--json")
    assert code == 0
    return {row["path"].rsplit("/", 1)[-1]: row for row in json.loads(out)}


def test_list(cli, two_models: tuple[Path, Path]) -> None:
    rows = _listed(cli)
    assert rows["first"]["active"] and rows["first"]["status"] == "active"
    assert rows["first"]["sha256"] == Manifest.read(two_models[0]).sha256
    assert rows["first"]["why"] == "first model" and rows["first"]["promoted_at"]
    assert rows["second"]["status"] == "candidate" and rows["second"]["metrics"] == {
        "note": "second"
    }
    code, out, _ = cli("models", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ACTIVE", "SHA256", "STATUS", "SINCE", "NAME"]
    first = next(k for k, line in enumerate(lines) if rows["first"]["sha256"][:12] in line)
    assert lines[first].startswith("*") and lines[first + 1].strip() == "why: first model"
    second = next(line for line in lines if rows["second"]["sha256"][:12] in line)
    assert second.split()[1:3] == ["candidate", rows["second"]["created_at"]]


def test_activate_then_rollback(cli) -> None:
    second = _listed(cli)["second"]["sha256"]
    code, out, _ = cli("models", "activate", second[:10], "--why", "better on the site")
    assert code == 0 and out.strip().startswith(f"active model: {second[:12]}")
    rows = _listed(cli)
    assert rows["second"]["active"] and rows["second"]["why"] == "better on the site"
    assert rows["first"]["status"] == "retired"

    code, out, _ = cli("models", "rollback")
    assert code == 0 and "rolled back" in out
    rows = _listed(cli)
    assert rows["first"]["active"]
    assert rows["second"]["status"] == "rolled_back"
    assert rows["first"]["why"] == "restored by rollback: rolled back by hand"


def test_a_modified_model_is_refused(cli, two_models: tuple[Path, Path]) -> None:
    sha = Manifest.read(two_models[1]).sha256
    with (two_models[1] / "model.keras").open("rb") as original:
        data = original.read()
    try:
        (two_models[1] / "model.keras").write_bytes(data + b"\0")
        code, _, err = cli("models", "activate", sha)
    finally:
        (two_models[1] / "model.keras").write_bytes(data)
    assert code == 1
    assert "does not match" in err and err.count("\n") == 1
    assert _listed(cli)["first"]["active"]


def test_rollback_without_history_is_one_line(cli) -> None:
    code, _, err = cli("models", "rollback")
    assert code == 1 and err.startswith("facegate: error: no earlier model version")
