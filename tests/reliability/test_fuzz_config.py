"""Configuration: each invalid value gives one clear line naming the key and a non-zero exit.

Every field of every section is tried with a value of the wrong type (generated from the
config model, so a new key is covered the day it is added), every section with an unknown key,
and a hand-written table adds out-of-range values, bad enums, bad patterns and the cross-field
rules, all through the real ``facegate config check``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.cli.main import main
from facegate.config import FacegateConfig, StrictModel

SECTIONS = {
    name: field.annotation
    for name, field in FacegateConfig.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, StrictModel)
}

# (TOML text, key path the error line must name, a word the line must contain)
RANGE_CASES = [
    ('door = "Front Door"', "door", "pattern"),
    ('door = ""', "door", "pattern"),
    ('[logging]\nlevel = "LOUD"', "logging.level", "DEBUG"),
    ("[storage]\nbusy_timeout_s = 0", "storage.busy_timeout_s", "greater than 0"),
    ('[face]\ndetector = "long_range"', "face.detector", "short_range"),
    ("[face]\nmin_detection_score = 1.5", "face.min_detection_score", "less than or equal"),
    ('[face]\nmultiple_faces = "all"', "face.multiple_faces", "largest"),
    ("[face]\nmax_image_side = -1", "face.max_image_side", "greater than 0"),
    ("[face]\nmin_brightness = 200\nmax_brightness = 100", "face", "min_brightness"),
    ('[model]\nruntime = "onnx"', "model.runtime", "tensorflow"),
    ("[model]\ndetection_threshold = 1.0", "model.detection_threshold", "less than 1"),
    ("[model]\nverification_threshold = 0", "model.verification_threshold", "greater than 0"),
    ("[enrollment]\nmin_images = 0", "enrollment.min_images", "greater than or equal"),
    ("[enrollment]\nduplicate_similarity = 2", "enrollment.duplicate_similarity", "less than"),
    ("[mqtt]\nport = 70000", "mqtt.port", "less than or equal"),
    ("[mqtt]\nport = 0", "mqtt.port", "greater than or equal"),
    ('[mqtt]\nbase_topic = "a/#"', "mqtt.base_topic", "pattern"),
    ('[mqtt]\ndiscovery_prefix = "home assistant"', "mqtt.discovery_prefix", "pattern"),
    ("[mqtt]\nkeepalive_s = 1", "mqtt.keepalive_s", "greater than or equal"),
    ("[mqtt]\nmax_payload_bytes = 0", "mqtt.max_payload_bytes", "greater than 0"),
    ('[source]\nkind = "webcam"', "source.kind", "camera"),
    ('[source]\nkind = "url"', "source", "url"),
    ('[source]\nkind = "folder"', "source", "folder"),
    ("[source]\nfps = 500", "source.fps", "less than or equal"),
    ("[source]\nread_timeout_s = -1", "source.read_timeout_s", "greater than 0"),
    ("[motion]\npixel_threshold = 256", "motion.pixel_threshold", "less than or equal"),
    ("[motion]\nmin_area = 0", "motion.min_area", "greater than 0"),
    ("[decision]\nburst_frames = 0", "decision.burst_frames", "greater than or equal"),
    ("[decision]\ntrigger_queue = 100000", "decision.trigger_queue", "less than or equal"),
    ("[decision]\nmargin = 1", "decision.margin", "less than 1"),
    ("[lockout]\nmax_failures = 0", "lockout.max_failures", "greater than or equal"),
    ('[actuator]\nkind = "relay"', "actuator.kind", "command"),
    ('[actuator]\nkind = "mqtt"', "actuator", "topic"),
    ('[actuator]\nkind = "command"', "actuator", "command"),
    ("[actuator]\ntimeout_s = 0", "actuator.timeout_s", "greater than 0"),
    ("[actuator]\npulse_s = 61", "actuator.pulse_s", "less than or equal"),
    ("[capture]\nretention_days = 0", "capture.retention_days", "greater than 0"),
    ("[heartbeat]\ninterval_s = 0.5", "heartbeat.interval_s", "greater than or equal"),
    ('[scheduler]\nretrain = "61 * * * *"', "scheduler", "retrain"),
    ('[scheduler]\ngallery_refresh = "sometimes"', "scheduler", "gallery_refresh"),
    ('[scheduler]\nretention = "0s"', "scheduler", "retention"),
    ("[scheduler]\nretrain_memory_mb = 100", "scheduler.retrain_memory_mb", "greater than"),
    ("[scheduler]\nretrain_lfw_pairs = 1001", "scheduler.retrain_lfw_pairs", "less than"),
]


def _wrong_type_cases() -> list[tuple[str, str, str]]:
    """Every field set to an inline table: the wrong type for every scalar and list field."""
    cases = [("door = { bogus = 1 }", "door", "")]
    for section, model in SECTIONS.items():
        for field in model.model_fields:
            cases.append((f"[{section}]\n{field} = {{ bogus = 1 }}", f"{section}.{field}", ""))
    return cases


def _unknown_key_cases() -> list[tuple[str, str, str]]:
    cases = [("colour = 1", "colour", "not permitted")]
    for section in SECTIONS:
        cases.append((f"[{section}]\ncolour = 1", f"{section}.colour", "not permitted"))
    cases.append(("[cameras]\nfront = 1", "cameras", "not permitted"))
    return cases


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "facegate.toml"
    path.write_text(text + "\n", encoding="utf-8")
    rc = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_one_clear_line(rc: int, out: str, err: str, key: str, word: str) -> None:
    assert rc == 1, (rc, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("facegate: error: "), line
    # The key path, as the user would write it, right after the file name.
    assert f": {key}: " in line, line
    assert word.lower() in line.lower(), line


@pytest.mark.parametrize(("text", "key", "word"), RANGE_CASES)
def test_invalid_value_names_its_key(tmp_path, capsys, text: str, key: str, word: str) -> None:
    _assert_one_clear_line(*_check(tmp_path, text, capsys), key, word)


@pytest.mark.parametrize(("text", "key", "word"), _wrong_type_cases())
def test_wrong_type_names_its_key(tmp_path, capsys, text: str, key: str, word: str) -> None:
    _assert_one_clear_line(*_check(tmp_path, text, capsys), key, word)


@pytest.mark.parametrize(("text", "key", "word"), _unknown_key_cases())
def test_unknown_key_names_itself(tmp_path, capsys, text: str, key: str, word: str) -> None:
    _assert_one_clear_line(*_check(tmp_path, text, capsys), key, word)


def test_range_table_covers_every_section() -> None:
    named = {key.split(".")[0] for _, key, _ in RANGE_CASES}
    assert set(SECTIONS) <= named, sorted(set(SECTIONS) - named)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("[mqtt\nport = 1", "not valid TOML"),
        ("door = 'a\x00b'", "not valid TOML"),
        ("\udcff", "cannot read"),
    ],
)
def test_unreadable_files_give_one_line(tmp_path, capsys, text: str, word: str) -> None:
    path = tmp_path / "facegate.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    rc = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert len(err.splitlines()) == 1 and word in err, err


def test_a_valid_file_still_passes(tmp_path, capsys) -> None:
    rc, out, err = _check(tmp_path, "[mqtt]\nport = 8883", capsys)
    assert rc == 0 and "ok" in out and err == ""
