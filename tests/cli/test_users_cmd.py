"""``facegate users ...`` through the CLI runner, on a registry in a tmp data dir."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from facegate.cli.main import main
from facegate.config import StorageConfig
from facegate.storage.files import encode_crop
from facegate.storage.records import NewGalleryImage
from facegate.storage.registry import open_registry

MODEL = "f" * 64


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``facegate --config <tmp> ARGS``; returns (exit code, stdout, stderr)."""
    config = tmp_path / "facegate.toml"
    config.write_text(f'[storage]\ndata_dir = "{data_dir}"\n')

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def alice(data_dir: Path) -> None:
    """Alice with two gallery images, and Bob with none."""
    registry = open_registry(StorageConfig(data_dir=data_dir))
    images = []
    for seed in (1, 2):
        crop = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        enc = encode_crop(crop)
        images.append(NewGalleryImage(enc.sha256, enc.png, 0.8, f"a{seed}.jpg", np.ones(4)))
    registry.create_user_with_gallery("Alice", images, MODEL, display_name="Alice A.")
    registry.create_user("Bob")
    registry.close()


def test_list_and_show(cli, alice: None) -> None:
    code, out, _ = cli("users", "list")
    assert code == 0 and "Alice" in out and "Bob" in out
    code, out, _ = cli("users", "list", "--json")
    users = json.loads(out)
    assert [(u["name"], u["images"], u["active"]) for u in users] == [
        ("Alice", 2, True),
        ("Bob", 0, True),
    ]
    code, out, _ = cli("users", "show", "Alice", "--json")
    shown = json.loads(out)
    assert shown["display_name"] == "Alice A." and shown["schedule"] is None
    code, out, _ = cli("users", "show", "Alice")
    assert code == 0 and "Alice A." in out


def test_empty_list(cli) -> None:
    assert cli("users", "list")[1].strip() == "no users enrolled"
    assert json.loads(cli("users", "list", "--json")[1]) == []


@pytest.mark.parametrize(
    "args",
    [
        ("show", "Nobody"),
        ("enable", "Nobody"),
        ("disable", "Nobody"),
        ("rename", "Nobody", "Somebody"),
        ("delete", "Nobody"),
        ("set", "Nobody", "--consent", "yes"),
    ],
)
def test_an_unknown_user_is_one_line_and_exit_1(cli, alice: None, args: tuple[str, ...]) -> None:
    code, out, err = cli("users", *args)
    assert code == 1 and out == ""
    assert err.strip() == "facegate: error: no user named 'Nobody'"


def test_enable_disable_rename(cli, alice: None, data_dir: Path) -> None:
    assert cli("users", "disable", "Bob")[1].strip() == "Bob: disabled"
    assert json.loads(cli("users", "show", "Bob", "--json")[1])["active"] is False
    assert cli("users", "enable", "Bob")[0] == 0
    assert json.loads(cli("users", "show", "Bob", "--json")[1])["active"] is True
    code, out, _ = cli("users", "rename", "Bob", "Robert Ø")
    assert code == 0 and "Robert Ø" in out
    code, _, err = cli("users", "rename", "Robert Ø", "Alice")
    assert code == 1 and "already exists" in err


def test_set_validity_schedule_and_consent(cli, alice: None) -> None:
    code, out, _ = cli(
        "users",
        "set",
        "Alice",
        "--valid-from",
        "2026-01-01T08:00+00:00",
        "--valid-until",
        "2026-12-31",
        "--schedule",
        "mon-fri 07:00-19:00; sat 09:00-12:00",
        "--consent",
        "yes",
    )
    assert code == 0, out
    shown = json.loads(cli("users", "show", "Alice", "--json")[1])
    assert shown["valid_from"] == "2026-01-01T08:00:00+00:00"
    until = datetime.fromisoformat(shown["valid_until"])
    # a plain date means "through that day" in local time: access ends at the next midnight
    assert until.astimezone().replace(tzinfo=None) == datetime(2027, 1, 1)
    assert until.tzinfo is not None and until.utcoffset() == UTC.utcoffset(None)
    assert shown["schedule"] == "mon-fri 07:00-19:00; sat 09:00-12:00"
    assert shown["gallery_consent"] is True

    assert cli("users", "set", "Alice", "--schedule", "none", "--valid-until", "none")[0] == 0
    shown = json.loads(cli("users", "show", "Alice", "--json")[1])
    assert shown["schedule"] is None and shown["valid_until"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--schedule", "mon 25:00-26:00"), "invalid schedule"),
        (("--valid-until", "next tuesday"), "bad date"),
        (("--valid-from", "2027-01-01", "--valid-until", "2026-01-01"), "after"),
        ((), "nothing to set"),
    ],
)
def test_set_refuses_bad_values(cli, alice: None, args: tuple[str, ...], message: str) -> None:
    code, _, err = cli("users", "set", "Alice", *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_delete_removes_rows_and_files(cli, alice: None, data_dir: Path) -> None:
    assert len(list((data_dir / "gallery").rglob("*.png"))) == 2
    code, out, _ = cli("users", "delete", "Alice")
    assert code == 0 and "2 crop files removed" in out
    assert list((data_dir / "gallery").rglob("*.png")) == []
    assert [u["name"] for u in json.loads(cli("users", "list", "--json")[1])] == ["Bob"]
