"""``facegate enroll`` through the CLI runner, with a tiny real model and LFW images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_enroll_support import enroll_fixtures

fixtures = enroll_fixtures()


def test_enroll_prints_each_rejection_and_a_summary(cli, tmp_path: Path, lfw_images: Path) -> None:
    bad = fixtures.make_bad_images(tmp_path / "bad", lfw_images)
    good = fixtures.person_images(lfw_images, fixtures.PEOPLE[0], 3)
    code, out, _ = cli("enroll", "Colin Powell", *good, *bad.values(), "--display-name", "Colin")
    assert code == 0, out
    lines = out.strip().splitlines()
    rejected = [line for line in lines if line.startswith("rejected: ")]
    assert len(rejected) == 3
    assert f"rejected: {bad['text']}: unreadable_image" in rejected
    assert f"rejected: {bad['no_face']}: no_face" in rejected
    assert lines[-1].startswith("enrolled Colin Powell (user 1): 3 accepted, 3 rejected")

    code, out, _ = cli("users", "show", "Colin Powell", "--json")
    assert json.loads(out)["display_name"] == "Colin" and json.loads(out)["images"] == 3


def test_enroll_from_a_directory_as_json(cli, lfw_images: Path, tmp_path: Path) -> None:
    folder = tmp_path / "serena"
    folder.mkdir()
    for src in fixtures.person_images(lfw_images, fixtures.PEOPLE[2], 4):
        (folder / src.name).write_bytes(src.read_bytes())
    code, out, _ = cli("enroll", "Serena", folder, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["stored"] and len(report["accepted"]) == 4 and report["rejected"] == []


def test_too_few_images_exit_non_zero_and_store_nothing(
    cli, tmp_path: Path, lfw_images: Path
) -> None:
    bad = fixtures.make_bad_images(tmp_path / "bad", lfw_images)
    good = fixtures.person_images(lfw_images, fixtures.PEOPLE[1], 2)
    code, out, err = cli("enroll", "Tony", *good, bad["text"], tmp_path / "missing.jpg")
    assert code == 1
    assert f"rejected: {tmp_path / 'missing.jpg'}: file not found" in out
    assert "not enrolled: Tony: 2 accepted, 2 rejected" in out
    assert "at least 3 needed; nothing was stored" in err
    assert json.loads(cli("users", "list", "--json")[1]) == []
    assert list((tmp_path / "data").rglob("*.png")) == []


def test_a_second_enrollment_of_the_same_face_warns(cli, lfw_images: Path) -> None:
    images = fixtures.person_images(lfw_images, fixtures.PEOPLE[0], 3)
    assert cli("enroll", "Colin", *images)[0] == 0
    code, out, _ = cli("enroll", "Colin two", *images)
    assert code == 0
    (warning,) = [line for line in out.splitlines() if line.startswith("warning:")]
    assert "'Colin two' looks like existing user 'Colin' (score 0." in warning


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Colin",), "give image files or directories, or --camera N"),
        (("bad\x07name", "x.jpg"), "invalid name"),
        (("Colin", "--camera", "97"), "camera 97 cannot be opened"),
    ],
)
def test_usage_errors_are_one_line(cli, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli("enroll", *args)
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith(f"facegate: error: {message}")


def test_an_existing_name_is_refused(cli, lfw_images: Path) -> None:
    images = fixtures.person_images(lfw_images, fixtures.PEOPLE[0], 3)
    assert cli("enroll", "Colin", *images)[0] == 0
    code, _, err = cli("enroll", "Colin", *images)
    assert code == 1 and "already exists" in err
