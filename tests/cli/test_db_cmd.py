"""``facegate db status|upgrade`` through the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from facegate.cli.main import main
from facegate.storage.db import create_engine_for
from facegate.storage.migrate import head_revision


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "facegate.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def test_status_of_a_missing_registry_then_upgrade(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "db", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["current"] is None and status["head"] == head_revision()
    assert not (tmp_path / "data" / "registry.db").exists()  # status changes nothing

    assert main(["--config", str(config_file), "db", "upgrade"]) == 0
    assert f"to {head_revision()}" in capsys.readouterr().out
    assert main(["--config", str(config_file), "db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out

    assert main(["--config", str(config_file), "db", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["up_to_date"] and status["users"] == 0 and status["outbox"] == 0
    assert main(["--config", str(config_file), "db", "status"]) == 0
    assert "schema:" in capsys.readouterr().out


def test_a_newer_registry_is_refused_in_one_line(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "db", "upgrade"]) == 0
    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'registry.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999future'"))
    engine.dispose()
    capsys.readouterr()
    for command in (["db", "status"], ["db", "upgrade"], ["users", "list"]):
        assert main(["--config", str(config_file), *command]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == (
            "facegate: error: registry schema 9999future is newer than this facegate; "
            "upgrade facegate"
        )
