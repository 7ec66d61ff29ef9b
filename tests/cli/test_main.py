"""The CLI shell: help, usage errors, and a config error as one line with exit 1."""

import pytest

from facegate.cli.main import main


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: facegate" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert "facegate" in capsys.readouterr().out


def test_global_options_may_follow_the_command() -> None:
    from facegate.cli.main import hoist_global_options

    assert hoist_global_options(["run", "--config", "f.toml"]) == ["--config", "f.toml", "run"]
    assert hoist_global_options(["users", "list", "--config=f.toml", "--json"]) == [
        "--config=f.toml",
        "users",
        "list",
        "--json",
    ]
    assert hoist_global_options(["enroll", "--", "--config"]) == ["enroll", "--", "--config"]
