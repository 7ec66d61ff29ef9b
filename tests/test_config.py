"""Config loading: defaults, TOML files, and errors that name the key."""

from pathlib import Path

import pytest

from facegate.config import FacegateConfig, load_config, mqtt_password, parse_config
from facegate.errors import ConfigError


def test_defaults_use_sqlite_in_data_dir(tmp_path: Path) -> None:
    config = parse_config({"storage": {"data_dir": str(tmp_path)}})
    assert config.storage.resolved_url == f"sqlite:///{tmp_path / 'registry.db'}"


def test_load_toml(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text('door = "back_door"\n[face]\nmultiple_faces = "reject"\n')
    config = load_config(path)
    assert config.door == "back_door"
    assert config.face.multiple_faces == "reject"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[face]\nmin_detection_score = 2\n", "face.min_detection_score"),
        ("[face]\nmin_brightness = 200\nmax_brightness = 100\n", "face"),
        ("[storage]\nbogus = 1\n", "storage.bogus"),
        ('door = "Front Door!"\n', "door"),
        ('[model]\nruntime = "onnx"\n', "model.runtime"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert f": {key}:" in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "x.toml"
    bad.write_text("door = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_config_is_frozen() -> None:
    config = FacegateConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.door = "x"  # type: ignore[misc]


def test_mqtt_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"mqtt": {"password": "in-file"}})
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert mqtt_password(config.mqtt) == "in-file"
    assert "in-file" not in repr(config)
    via_env = parse_config({"mqtt": {"password": "in-file", "password_env": "FG_PW"}})
    with pytest.raises(ConfigError, match="FG_PW"):
        mqtt_password(via_env.mqtt)
    monkeypatch.setenv("FG_PW", "from-env")
    assert mqtt_password(via_env.mqtt) == "from-env"
    (tmp_path / "mqtt_password").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert mqtt_password(via_env.mqtt) == "from-credential"
