"""Hostile CLI arguments through the real ``facegate`` entry point (hypothesis).

Names and values that are empty, very long, made of control characters, path separators, SQL
fragments or any Unicode: each command either accepts one properly (and stores exactly what
it says) or refuses with one ``error:`` line and a non-zero exit, never a traceback, and a
refusal leaves the registry exactly as it was.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest
from daemon_site import person, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import integrity, table_rows

from facegate.cli.main import main
from facegate.config import FacegateConfig

TABLES = ("users", "gallery_images", "embeddings", "model_versions", "access_log")
NASTY = [
    "",
    " ",
    "\t",
    "x" * 129,
    "y" * 10_000,
    "\x00",
    "Ada\x00Lovelace",
    "a\nb",
    "\x1b[31mred",
    "\u202eevil",  # right-to-left override: would spoof another name
    "zero\u200bwidth",
    "../../etc/passwd",
    "/etc/shadow",
    "..\\..\\boot.ini",
    "'; DROP TABLE users; --",
    'Robert"); DELETE FROM users WHERE ("1"="1',
    "%s%s%n",
    "{0.__class__}",
    "--help",
    "-x",
    "Zoë",
    "李小龍",
    "👩‍🔬",
    "Ada ",  # an existing user's name, padded
]
names = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.text(min_size=100, max_size=300),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"]), max_size=5),
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _snapshot(db: Path) -> dict[str, list[tuple]]:
    return {table: table_rows(db, table) for table in TABLES}


def _acceptable(name: str) -> bool:
    """Independent statement of the name rule: printable, one line, not blank, <= 128."""
    clean = unicodedata.normalize("NFC", name).strip()
    return 0 < len(clean) <= 128 and all(
        unicodedata.category(c)[0] != "C"
        and unicodedata.category(c) not in ("Zl", "Zp")
        and (unicodedata.category(c) != "Zs" or c == " ")
        for c in clean
    )


@pytest.fixture
def facegate(site: FacegateConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Run the CLI against the site's registry: (exit code, stdout, stderr)."""
    config_file = write_config(site, tmp_path / "facegate.toml")

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["--config", str(config_file), "--log-level", "ERROR", *args])
        except SystemExit as exit_:  # argparse refuses a usage error this way (status 2)
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _refused_cleanly(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in (1, 2), (code, err)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    if code == 1:  # ours: one line and nothing else
        assert err.count("\n") == 1 and err.startswith("facegate: error: "), err


def test_names_through_every_user_command(site: FacegateConfig, facegate) -> None:
    db = site.storage.data_dir / "registry.db"
    commands = [
        ("users", "show"),
        ("users", "enable"),
        ("users", "disable"),
        ("users", "delete"),
        ("users", "set", "--display-name", "x"),
        ("gallery", "list"),
        ("gallery", "remove", "{name}", "1"),
    ]
    seen = {"refused": 0, "renamed": 0}

    @FUZZ
    @given(name=names, command=st.sampled_from(commands))
    def fuzz(name: str, command: tuple[str, ...]) -> None:
        if unicodedata.normalize("NFC", name).strip() == "Ada":
            return  # the one enrolled user: acting on her is legitimate
        before = _snapshot(db)
        args = [name if a == "{name}" else a for a in command]
        if "{name}" not in command:
            args.insert(2, name)
        code, out, err = facegate(*args)
        if name.startswith("-") and code == 0:
            assert "usage:" in out  # argparse took it for an option: --help
        else:
            _refused_cleanly(code, err)  # no such user, or not a valid name
        assert _snapshot(db) == before
        seen["refused"] += 1

    @FUZZ
    @given(name=names)
    def fuzz_rename(name: str) -> None:
        before = _snapshot(db)
        code, out, err = facegate("users", "rename", "Ada", name)
        clean = unicodedata.normalize("NFC", name).strip()
        if name.startswith("-") and code == 0:
            assert "usage:" in out and _snapshot(db) == before  # argparse: --help
        elif code == 0:
            assert _acceptable(name), f"accepted {name!r}"
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT name FROM users").fetchall() == [(clean,)]
            if clean != "Ada":
                assert facegate("users", "rename", clean, "Ada")[0] == 0
                seen["renamed"] += 1
        else:
            _refused_cleanly(code, err)
            assert not _acceptable(name) or clean == "Ada" or clean.startswith("-"), name
            assert _snapshot(db) == before

    fuzz()
    fuzz_rename()
    assert seen["refused"] > 0 and seen["renamed"] > 0


def test_user_rule_values(site: FacegateConfig, facegate) -> None:
    db = site.storage.data_dir / "registry.db"
    options = ["--valid-from", "--valid-until", "--schedule", "--display-name", "--consent"]

    @settings(FUZZ, max_examples=100)
    @given(option=st.sampled_from(options), value=st.one_of(st.sampled_from(NASTY), st.text()))
    def fuzz(option: str, value: str) -> None:
        before = _snapshot(db)
        code, _out, err = facegate("users", "set", "Ada", f"{option}={value}")
        if code == 0:
            assert "Traceback" not in err
            facegate("users", "set", "Ada", f"{option}=none" if option != "--consent" else "")
        else:
            _refused_cleanly(code, err)
            assert _snapshot(db) == before

    fuzz()


def test_enroll_names_are_never_paths(
    site: FacegateConfig, facegate, lfw_images: Path, tmp_path: Path
) -> None:
    """Path separators and SQL in a name are just text: stored as given, no file outside the
    data directory, and the other users untouched."""
    db = site.storage.data_dir / "registry.db"
    first = table_rows(db, "users")[0][1]
    names = ["../../outside", "/etc/facegate-test", "'; DROP TABLE users; --"]
    people = ["Tony_Blair", "Gerhard_Schroeder", "George_W_Bush"]
    for name, who in zip(names, people, strict=True):
        images = [str(p) for p in person(lfw_images, who, 5)]
        code, _out, err = facegate("enroll", name, *images)
        assert code == 0, err
    with sqlite3.connect(db) as conn:
        stored = [row[0] for row in conn.execute("SELECT name FROM users ORDER BY id")]
        paths = [row[0] for row in conn.execute("SELECT path FROM gallery_images")]
    assert stored == [first, *names]
    assert all(".." not in p and not p.startswith("/") for p in paths)
    assert not (tmp_path.parent / "outside").exists()
    assert not list(Path("/etc").glob("facegate-test*"))
    assert integrity(db) == "ok"
