"""``facegate config``: the example is complete, valid, and equal to the defaults."""

import re
import tomllib
from pathlib import Path

import pytest

from facegate.cli.config_cmd import example_text
from facegate.cli.main import main
from facegate.config import FacegateConfig, StrictModel, parse_config

ROOT = Path(__file__).resolve().parents[2]


def _fields(model: type[StrictModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, StrictModel):
            out.extend(_fields(kind, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def test_example_mentions_every_key() -> None:
    text = example_text()
    sections: dict[str, set[str]] = {"": set()}
    current = ""
    for line in text.splitlines():
        header = re.match(r"^\[(\w+)\]", line)
        if header:
            current = header.group(1)
            sections[current] = set()
            continue
        key = re.match(r"^#?\s*(\w+)\s*=", line)
        if key:
            sections[current].add(key.group(1))
    for dotted in _fields(FacegateConfig):
        section, _, key = dotted.rpartition(".")
        assert key in sections.get(section, set()), f"{dotted} is missing from the example"


def test_example_values_are_the_defaults(tmp_path: Path) -> None:
    data = tomllib.loads(example_text())
    data.setdefault("storage", {})["data_dir"] = str(tmp_path)
    assert parse_config(data) == FacegateConfig(storage={"data_dir": tmp_path})


def test_deploy_copy_is_the_packaged_example() -> None:
    assert (ROOT / "deploy" / "facegate.example.toml").read_text() == example_text()


def test_check_and_example_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "example"]) == 0
    printed = capsys.readouterr().out
    path = tmp_path / "f.toml"
    path.write_text(printed)
    assert main(["config", "check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
    path.write_text(printed.replace("max_failures = 5", "max_failures = 0"))
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "lockout.max_failures" in err
