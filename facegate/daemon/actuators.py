"""What opens the door: an MQTT command, a local program (a relay), or nothing.

Fail secure: an actuator never raises. A failure (program missing, non-zero exit, timeout, no
broker) comes back as ``ActuationResult(ok=False, detail=...)`` for the access log; the door
then simply stays shut, since the strike is closed unless something actively opens it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from facegate.config import ActuatorConfig
from facegate.errors import ConfigError

logger = logging.getLogger(__name__)

# Output of the program kept in ``detail`` (characters), enough for an error line.
_MAX_OUTPUT_CHARS = 200
# After killing a timed-out program, how long to wait for it to be reaped.
_REAP_TIMEOUT_S = 2.0

# publish(topic, payload, qos, retain) -> True when the message went to the broker.
PublishFn = Callable[[str, bytes, int, bool], bool]


@dataclass(frozen=True)
class ActuationResult:
    """Outcome of one opening: ``ok``, a one-line ``detail``, and ``duration_ms`` it took (ms)."""

    ok: bool
    detail: str
    duration_ms: float


class Actuator(Protocol):
    """Opens the door once; never raises (failures are an ``ok=False`` result)."""

    def open_door(self, reason: str) -> ActuationResult:
        """Open the door for ``reason`` (e.g. ``"granted:alice"``); report how it went."""
        ...


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


class NoneActuator:
    """No door hardware: every opening succeeds at doing nothing (for trials and monitoring)."""

    def open_door(self, reason: str) -> ActuationResult:
        """Log and report success without touching anything."""
        logger.info("No actuator configured; door not actuated (%s)", reason)
        return ActuationResult(ok=True, detail="no actuator configured", duration_ms=0.0)


def _failed(started: float, detail: str) -> ActuationResult:
    logger.error("Door actuation failed, door stays shut: %s", detail)
    return ActuationResult(ok=False, detail=detail, duration_ms=_elapsed_ms(started))


def _one_line(output: bytes) -> str:
    text = " ".join(output.decode("utf-8", errors="replace").split())
    if len(text) > _MAX_OUTPUT_CHARS:
        return text[:_MAX_OUTPUT_CHARS] + "..."
    return text


class CommandActuator:
    """Runs a program once per opening; the program itself pulses the relay.

    ``argv`` runs without a shell, in its own process group, with stdin closed and these extra
    environment variables: ``FACEGATE_PULSE_S`` (how long to hold the strike open, seconds, as
    a decimal string, e.g. ``"3.0"``) and ``FACEGATE_REASON`` (why it opens). The program must
    exit 0 once the pulse is done. It may run ``pulse_s + timeout_s`` seconds in all; past that
    the whole process group is killed (SIGKILL) and the opening reported as failed. A non-zero
    exit is a failure too; stdout and stderr are captured and quoted (truncated) in ``detail``.
    """

    def __init__(self, argv: Sequence[str], pulse_s: float, timeout_s: float) -> None:
        if not argv:
            raise ConfigError("actuator.command: empty command")
        self.argv = list(argv)
        self.pulse_s = pulse_s
        self.timeout_s = timeout_s

    def open_door(self, reason: str) -> ActuationResult:
        """Run the program and report its exit; kill it at the deadline."""
        started = time.monotonic()
        env = {**os.environ, "FACEGATE_PULSE_S": str(self.pulse_s), "FACEGATE_REASON": reason}
        program = self.argv[0]
        try:
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group, so a timeout kills its children
            )
        except FileNotFoundError:
            return _failed(started, f"command not found: {program}")
        except PermissionError:
            return _failed(started, f"command not executable: {program}")
        except OSError as err:
            return _failed(started, f"cannot run {program}: {err.strerror or err}")
        deadline = self.pulse_s + self.timeout_s
        try:
            output, _ = process.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            self._kill(process)
            try:
                output, _ = process.communicate(timeout=_REAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                output = b""  # a grandchild escaped the group and holds the pipe; stop waiting
            out = _one_line(output or b"")
            detail = f"{program}: timed out after {deadline:.1f} s, killed"
            return _failed(started, f"{detail}: {out}" if out else detail)
        out = _one_line(output or b"")
        if process.returncode != 0:
            detail = f"{program}: exit status {process.returncode}"
            return _failed(started, f"{detail}: {out}" if out else detail)
        duration = _elapsed_ms(started)
        logger.info("Door opened by %s in %.0f ms (%s)", program, duration, reason)
        detail = f"{program}: exit status 0"
        return ActuationResult(True, f"{detail}: {out}" if out else detail, duration)

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it exited just now
        except PermissionError:
            process.kill()


class MqttActuator:
    """Publishes ``payload`` to ``topic`` with QoS ``qos``, never retained.

    A retained unlock would re-open the door for every client that subscribes later. The
    ``publish`` function should return False when the message cannot go out now (no broker):
    an unlock queued and delivered minutes later would open the door for nobody.
    """

    def __init__(self, publish: PublishFn, topic: str, payload: str, qos: int = 1) -> None:
        self._publish = publish
        self.topic = topic
        self.payload = payload.encode("utf-8")
        self.qos = qos

    def open_door(self, reason: str) -> ActuationResult:
        """Publish the command once; report whether the client accepted it."""
        started = time.monotonic()
        try:
            sent = bool(self._publish(self.topic, self.payload, self.qos, False))
        except Exception as err:  # the MQTT layer may fail in any way; the door stays shut
            return _failed(started, f"publish to {self.topic} failed: {err}")
        if not sent:
            return _failed(started, f"publish to {self.topic} not accepted")
        duration = _elapsed_ms(started)
        logger.info("Door command published on %s (%s)", self.topic, reason)
        return ActuationResult(True, f"published to {self.topic}", duration)


def make_actuator(config: ActuatorConfig, publish: PublishFn | None = None) -> Actuator:
    """The configured actuator; ``publish`` is needed for kind ``mqtt``."""
    if config.kind == "command":
        return CommandActuator(config.command, config.pulse_s, config.timeout_s)
    if config.kind == "mqtt":
        if publish is None:
            raise ConfigError("actuator.kind = 'mqtt' needs an MQTT connection")
        return MqttActuator(publish, config.topic, config.payload)
    return NoneActuator()
