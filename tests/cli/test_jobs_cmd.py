"""``facegate jobs list|run``: schedules, last runs and outcomes, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facegate.cli.main import main


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator:
    """Run ``facegate --config <tmp> ARGS``; returns (exit code, stdout, stderr)."""
    config = tmp_path / "facegate.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[model]\npath = "{tmp_path / "no-model"}"\n'
        '[decision]\ntimezone = "UTC"\n'
        '[scheduler]\nretention = "2h"\n'
    )

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_list_before_any_run(cli) -> None:
    code, out, _ = cli("jobs", "list", "--json")
    assert code == 0
    rows = {row["job"]: row for row in json.loads(out)}
    assert list(rows) == ["gallery_refresh", "retrain", "calibration", "retention"]
    assert rows["retrain"]["schedule"] == "off" and rows["retrain"]["next_run"] is None
    assert rows["retention"]["schedule"] == "2h"
    assert all(row["outcome"] is None for row in rows.values())
    assert rows["calibration"]["next_run"].endswith("03:45:00+00:00")
    code, out, _ = cli("jobs", "list")
    assert code == 0 and "never run" in out


def test_run_now_is_recorded(cli) -> None:
    code, out, _ = cli("jobs", "run", "retention")
    assert code == 0
    assert out.strip() == "retention: ok: deleted 0 captures and 0 access-log rows"
    rows = {row["job"]: row for row in json.loads(cli("jobs", "list", "--json")[1])}
    retention = rows["retention"]
    assert retention["outcome"] == "ok" and retention["last_finished"] is not None
    assert retention["message"].startswith("deleted 0 captures")
    # The next run follows the recorded one: two hours later.
    assert retention["next_run"] > retention["last_started"]


def test_a_failing_job_exits_1_and_is_listed_as_failed(cli) -> None:
    code, out, _ = cli("jobs", "run", "gallery_refresh")
    assert code == 1
    assert out.startswith("gallery_refresh: failed:") and "no-model" in out
    rows = {row["job"]: row for row in json.loads(cli("jobs", "list", "--json")[1])}
    assert rows["gallery_refresh"]["outcome"] == "failed"
    _, text, _ = cli("jobs", "list")
    assert "failed" in text


def test_unknown_job_is_a_usage_error(cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("jobs", "run", "defrag")
    assert exit_info.value.code == 2
