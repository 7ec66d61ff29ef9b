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
