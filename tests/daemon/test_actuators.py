"""Door actuators with real programs and a recording publish function."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from facegate.config import ActuatorConfig
from facegate.daemon.actuators import (
    ActuationResult,
    CommandActuator,
    MqttActuator,
    NoneActuator,
    make_actuator,
)
from facegate.errors import ConfigError


class RecordingPublish:
    """A real publish function: records every call and answers ``accept``."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple[str, bytes, int, bool]] = []
        self.accept = accept

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        self.calls.append((topic, payload, qos, retain))
        return self.accept


def test_none_actuator_succeeds_without_doing_anything() -> None:
    result = NoneActuator().open_door("granted:alice")
    assert result.ok and result.duration_ms == 0.0


def test_command_true_opens() -> None:
    result = CommandActuator(["/bin/true"], pulse_s=0.0, timeout_s=2.0).open_door("granted:alice")
    assert result.ok
    assert "exit status 0" in result.detail
    assert 0 < result.duration_ms < 2000


def test_command_false_fails_with_its_exit_status() -> None:
    result = CommandActuator(["/bin/false"], pulse_s=0.0, timeout_s=2.0).open_door("granted")
    assert not result.ok
    assert "exit status 1" in result.detail


def test_command_output_is_captured_and_truncated() -> None:
    script = "import sys; print('relay busy'); print('x' * 5000, file=sys.stderr); sys.exit(3)"
    result = CommandActuator([sys.executable, "-c", script], 0.0, 5.0).open_door("granted")
    assert not result.ok
    assert "exit status 3" in result.detail and "relay busy" in result.detail
    assert len(result.detail) < 400 and "\n" not in result.detail


def test_command_gets_the_pulse_and_reason_in_its_environment() -> None:
    check = 'test "$FACEGATE_PULSE_S" = 0.25 && test "$FACEGATE_REASON" = granted:bob'
    result = CommandActuator(["/bin/sh", "-c", check], 0.25, 2.0).open_door("granted:bob")
    assert result.ok, result.detail


def test_hanging_command_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The shell starts a background child: the timeout must kill it too, not just the shell.
    script = f"sleep 10 & echo $! > {pid_file}; wait"
    actuator = CommandActuator(["/bin/sh", "-c", script], pulse_s=0.0, timeout_s=0.5)
    started = time.monotonic()
    result = actuator.open_door("granted")
    assert time.monotonic() - started < 3.0
    assert not result.ok and "timed out" in result.detail
    assert 450 < result.duration_ms < 3000
    child = int(pid_file.read_text())
    stat = Path(f"/proc/{child}/stat")
    deadline = time.monotonic() + 2.0
    while stat.exists() and time.monotonic() < deadline:
        # A killed child may linger as a zombie until its new parent reaps it.
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.02)
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_sleep_past_the_timeout_is_killed() -> None:
    result = CommandActuator(["sleep", "10"], pulse_s=0.0, timeout_s=0.5).open_door("granted")
    assert not result.ok and "timed out after 0.5 s" in result.detail
    assert result.duration_ms < 3000


def test_timeout_allows_for_the_pulse() -> None:
    # 0.3 s of pulse plus 0.5 s of slack: a program holding the relay 0.4 s is fine.
    result = CommandActuator(["sleep", "0.4"], pulse_s=0.3, timeout_s=0.5).open_door("granted")
    assert result.ok, result.detail


def test_missing_program_fails_cleanly(tmp_path: Path) -> None:
    result = CommandActuator([str(tmp_path / "no-such-relay")], 0.0, 1.0).open_door("granted")
    assert not result.ok and "command not found" in result.detail
    not_executable = tmp_path / "relay.sh"
    not_executable.write_text("#!/bin/sh\nexit 0\n")
    result = CommandActuator([str(not_executable)], 0.0, 1.0).open_door("granted")
    assert not result.ok and "not executable" in result.detail


def test_mqtt_actuator_publishes_never_retained() -> None:
    publish = RecordingPublish()
    result = MqttActuator(publish, "door/front/set", "UNLOCK").open_door("granted:alice")
    assert result.ok
    assert publish.calls == [("door/front/set", b"UNLOCK", 1, False)]


@pytest.mark.parametrize("accept", [False, None])
def test_mqtt_actuator_reports_a_refused_publish(accept: bool | None) -> None:
    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        if accept is None:
            raise OSError("not connected")
        return accept

    result = MqttActuator(publish, "door/front/set", "UNLOCK").open_door("granted")
    assert isinstance(result, ActuationResult) and not result.ok
    assert "door/front/set" in result.detail


def test_make_actuator_builds_each_kind() -> None:
    publish = RecordingPublish()
    assert isinstance(make_actuator(ActuatorConfig()), NoneActuator)
    command = make_actuator(ActuatorConfig(kind="command", command=["/bin/true"]))
    assert isinstance(command, CommandActuator) and command.open_door("granted").ok
    mqtt = make_actuator(ActuatorConfig(kind="mqtt", topic="t/lock", payload="OPEN"), publish)
    assert mqtt.open_door("granted").ok
    assert publish.calls == [("t/lock", b"OPEN", 1, False)]
    with pytest.raises(ConfigError):
        make_actuator(ActuatorConfig(kind="mqtt", topic="t/lock"))
