"""``facegate doctor``: one line per check with a fix, JSON output, exit 1 on any failure."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from facegate.cli.doctor_cmd import CHECKS
from facegate.cli.main import main
from facegate.doctor import CHECK_NAMES


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "facegate.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n' + text)
    return path


def test_check_names_agree() -> None:
    assert CHECKS == CHECK_NAMES


def test_failed_check_prints_a_fix_and_exits_1(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {_closed_port()}\n')
    code = main(["doctor", "--config", str(config), "--check", "broker", "--check", "disk"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(out) == 2
    assert out[0].startswith("FAIL  broker") and "-> fix: start the broker" in out[0]
    assert out[1].startswith(("ok    disk", "WARN  disk"))


def test_passing_checks_exit_0(tmp_path: Path, capsys, mqtt_broker) -> None:
    config = _config(tmp_path, f'[mqtt]\nhost = "{mqtt_broker.host}"\nport = {mqtt_broker.port}\n')
    code = main(["--config", str(config), "doctor", "--check", "config", "--check", "broker"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[1].startswith("ok    broker")


def test_json_output(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path, '[source]\nkind = "none"\n')
    code = main(["--config", str(config), "doctor", "--json", "--check", "camera"])
    records = json.loads(capsys.readouterr().out)
    assert code == 0
    assert records == [
        {
            "name": "camera",
            "status": "skip",
            "ok": True,
            "detail": 'source.kind = "none": images arrive over MQTT only',
            "fix": "",
        }
    ]


def test_invalid_config_is_reported_before_any_check(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path, "[mqtt]\nportt = 1\n")
    assert main(["--config", str(config), "doctor"]) == 1
    assert "mqtt.portt" in capsys.readouterr().err


def test_unknown_check_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--check", "coffee"])
    assert exit_info.value.code == 2
