"""``facegate gallery add|remove|list`` through the CLI runner, with a tiny real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_enroll_support import enroll_fixtures

fixtures = enroll_fixtures()


@pytest.fixture
def tony(cli, lfw_images: Path) -> list[Path]:
    """Tony enrolled with his first three images; returns his next three."""
    images = fixtures.person_images(lfw_images, fixtures.PEOPLE[1], 6)
    assert cli("enroll", "Tony", *images[:3])[0] == 0
    return images[3:]


def test_add_list_remove(cli, tony: list[Path], tmp_path: Path) -> None:
    code, out, _ = cli("gallery", "add", "Tony", *tony[:2])
    assert code == 0 and "added to Tony (user 1): 2 accepted" in out
    images = json.loads(cli("gallery", "list", "Tony", "--json")[1])
    assert len(images) == 5
    assert {i["source"] for i in images} >= {tony[0].name, tony[1].name}
    assert all(i["path"].startswith("gallery/") and len(i["sha256"]) == 64 for i in images)

    code, out, _ = cli("gallery", "list", "Tony")
    assert code == 0 and tony[0].name in out
    assert "STORED" in out and out.count(" chip ") == 5 and "legacy" not in out

    first = images[0]
    crop = tmp_path / "data" / first["path"]
    assert crop.exists()
    code, out, _ = cli("gallery", "remove", "Tony", first["id"])
    assert code == 0 and "4 left" in out
    assert not crop.exists()
    assert len(json.loads(cli("gallery", "list", "Tony", "--json")[1])) == 4

    code, _, err = cli("gallery", "remove", "Tony", first["id"])
    assert code == 1 and "no gallery image" in err


def test_adding_only_duplicates_or_bad_images_fails(
    cli, tony: list[Path], tmp_path: Path, lfw_images: Path
) -> None:
    enrolled = fixtures.person_images(lfw_images, fixtures.PEOPLE[1], 1)
    bad = fixtures.make_bad_images(tmp_path / "bad", lfw_images)
    code, out, err = cli("gallery", "add", "Tony", *enrolled, bad["text"], "--json")
    assert code == 1
    report = json.loads(out)
    assert report["duplicates"][0]["duplicate_of"] == "(existing gallery)"
    assert report["rejected"][0]["reason"] == "unreadable_image"
    assert "no new usable image" in err


@pytest.mark.parametrize(
    "args",
    [("list", "Nobody"), ("remove", "Nobody", "1"), ("add", "Nobody", "x.jpg")],
)
def test_an_unknown_user_is_one_line_and_exit_1(cli, args: tuple[str, ...]) -> None:
    code, out, err = cli("gallery", *args)
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == "facegate: error: no user named 'Nobody'"
