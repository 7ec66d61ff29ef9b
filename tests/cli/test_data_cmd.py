"""``facegate data import-lfw`` and ``facegate data info`` through the CLI."""

import json
import tarfile
from pathlib import Path

import pytest

from facegate.cli.main import main

PEOPLE = ["Abdullah_Gul", "Alvaro_Uribe", "Aaron_Eckhart"]


def test_import_tarball_then_info(
    lfw_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tgz = tmp_path / "lfw-deepfunneled.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for person in PEOPLE:
            tar.add(lfw_images / person, arcname=f"lfw-deepfunneled/{person}")
    dest = tmp_path / "datasets" / "lfw"
    assert main(["data", "import-lfw", str(tgz), "--dest", str(dest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["people"] == 3 and report["people_with_2_or_more"] == 2
    assert report["images"] == 19 + 35 + 1 == report["usable_negatives"]

    assert main(["data", "info", str(dest), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {
        "people": 3,
        "images": 55,
        "people_with_2_or_more": 2,
        "images_of_people_with_2_or_more": 54,
    }
    assert main(["data", "info", str(dest)]) == 0
    assert "people with >= 2:   2" in capsys.readouterr().out


def test_import_default_dest_is_in_data_dir(
    lfw_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "lfw"
    (src / PEOPLE[2]).mkdir(parents=True)
    image = next((lfw_images / PEOPLE[2]).iterdir())
    (src / PEOPLE[2] / image.name).write_bytes(image.read_bytes())
    config = tmp_path / "facegate.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path / "state"}"\n')
    assert main(["--config", str(config), "data", "import-lfw", str(src)]) == 0
    assert (tmp_path / "state" / "datasets" / "lfw" / PEOPLE[2] / image.name).is_file()
    assert "people:                1" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "import-lfw", str(tmp_path / "nope.tgz"), "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegate: error:") and "not found" in err and "\n" not in err
    assert main(["data", "info", str(tmp_path / "missing")]) == 1
    assert "not a directory" in capsys.readouterr().err
