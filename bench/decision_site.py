"""The bench's site: a private mosquitto, a subscriber, LFW frames, and `facegate run` processes.

Shared by bench_decision.py's parts; nothing here times anything by itself except
``DaemonProcess.start`` (process start to READY=1 and to ``online``).
"""

from __future__ import annotations

import getpass
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOOR = "front_door"
ENROLLED = ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld")
STRANGERS = ("Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi")
GALLERY_PER_USER = 5
FRAME_W, FRAME_H = 640, 480


def photos(lfw: Path, name: str) -> list[Path]:
    """Sorted LFW photos of one person."""
    return sorted((lfw / name).glob("*.jpg"))


def probe_files(lfw: Path, count: int) -> list[tuple[str, Path]]:
    """``count`` (kind, path) probes alternating enrolled people (unseen photos) and strangers."""
    pools = [("enrolled", p) for n in ENROLLED for p in photos(lfw, n)[GALLERY_PER_USER:40]]
    strangers = [("stranger", p) for n in STRANGERS for p in photos(lfw, n)[:40]]
    rng = np.random.default_rng(8)
    out = []
    for i in range(count):
        pool = pools if i % 2 == 0 else strangers
        out.append(pool[int(rng.integers(len(pool)))])
    return out


def composite(face_rgb: np.ndarray, seed: int) -> np.ndarray:
    """A 640x480 RGB frame: a smooth random background with a 250x250 LFW photo in it."""
    rng = np.random.default_rng(seed)
    blobs = rng.integers(40, 200, (6, 8, 3)).astype(np.uint8)
    frame = cv2.resize(blobs, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
    y = (FRAME_H - face_rgb.shape[0]) // 2 + int(rng.integers(-20, 21))
    x = (FRAME_W - face_rgb.shape[1]) // 3 + int(rng.integers(-40, 41))
    frame[y : y + face_rgb.shape[0], x : x + face_rgb.shape[1]] = face_rgb
    return frame


def write_frames(lfw: Path, folder: Path, count: int) -> list[tuple[str, Path]]:
    """``count`` camera-like JPEG frames (enrolled people and strangers alternating)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (kind, path) in enumerate(probe_files(lfw, count)):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        target = folder / f"{i:04d}_{kind}.jpg"
        cv2.imwrite(str(target), cv2.cvtColor(composite(rgb, i), cv2.COLOR_RGB2BGR))
        out.append((kind, target))
    return out


class Broker:
    """A private mosquitto on a free loopback port, as installed or with set_tcp_nodelay."""

    def __init__(self, workdir: Path, nodelay: bool = False) -> None:
        self.host = "127.0.0.1"
        with socket.socket() as sock:
            sock.bind((self.host, 0))
            self.port = sock.getsockname()[1]
        mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        if mosquitto is None:
            raise SystemExit("mosquitto is not installed: no broker to measure through")
        stem = "mosquitto-nodelay" if nodelay else "mosquitto"
        conf = workdir / f"{stem}.conf"
        # Keep our own user: as root, mosquitto would drop to "mosquitto".
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\n"
            f"user {getpass.getuser()}\npersistence false\n"
            + ("set_tcp_nodelay true\n" if nodelay else "")
        )
        self._log = open(workdir / f"{stem}.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen(
            [mosquitto, "-c", str(conf)], stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit("mosquitto did not start")

    def stop(self) -> None:
        """Terminate the broker."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


class Subscriber:
    """A paho client that hands every message on the subscribed topics to a queue."""

    def __init__(self, broker: Broker, topics: list[str], client_id: str = "") -> None:
        import paho.mqtt.client as mqtt

        self.messages: queue.Queue[tuple[float, str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(
            (time.perf_counter(), msg.topic, msg.payload)
        )
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe([(t, 0) for t in topics])
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise SystemExit("subscriber could not subscribe")

    def wait_for(self, topic: str, payload: bytes | None = None, timeout: float = 30.0) -> Any:
        """The next (time, topic, payload) on ``topic`` (matching ``payload`` if given)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"nothing on {topic} within {timeout} s")
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if item[1] == topic and (payload is None or item[2] == payload):
                return item

    def drain(self) -> None:
        """Drop any queued messages."""
        while not self.messages.empty():
            self.messages.get_nowait()

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


def site_config(data_dir: Path, broker: Broker, **sections: dict) -> dict[str, Any]:
    """The bench door as config data: a temp registry, the private broker, no lockout, no
    grant cooldown (so every trigger decides), one-frame bursts, motion off."""
    data: dict[str, Any] = {
        "door": DOOR,
        "storage": {"data_dir": str(data_dir)},
        "mqtt": {"host": broker.host, "port": broker.port},
        "source": {"kind": "none"},
        "motion": {"enabled": False},
        "lockout": {"enabled": False},
        "decision": {
            "grant_cooldown_s": 0,
            "burst_frames": 1,
            "agreement": 1,
            "liveness": False,
        },
        "logging": {"level": "WARNING"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


def to_toml(data: dict[str, Any]) -> str:
    """Config data (scalars at the top, one level of tables) as TOML."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class DaemonProcess:
    """``python -m facegate run`` as systemd runs it: a config file and a NOTIFY_SOCKET."""

    def __init__(self, name: str, config: dict[str, Any], work: Path) -> None:
        self.name = name
        self.config_file = work / f"{name}.toml"
        self.config_file.write_text(to_toml(config))
        self.log_path = work / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.ready_s = self.online_s = float("nan")

    def start(self, broker: Broker, door: str = DOOR, timeout: float = 180.0) -> None:
        """Start, and time process start to READY=1 (sd_notify) and to ``online`` on MQTT."""
        availability = f"facegate/{door}/availability"
        sub = Subscriber(broker, [availability])
        sock_dir = Path(tempfile.mkdtemp(prefix="fg-notify-"))
        address = str(sock_dir / "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(address)
        notify.settimeout(timeout)
        env = {**os.environ, "NOTIFY_SOCKET": address}
        log = open(self.log_path, "wb")  # noqa: SIM115 (handed to the child)
        try:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "facegate", "run", "--config", str(self.config_file)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            while True:
                message = notify.recv(4096).decode(errors="replace")
                if "READY=1" in message.split("\n"):
                    self.ready_s = time.perf_counter() - t0
                    break
            t_online = sub.wait_for(availability, b"online", timeout=timeout)[0]
            self.online_s = t_online - t0
        except (TimeoutError, OSError) as err:
            raise SystemExit(
                f"{self.name}: daemon did not start ({err}); see {self.log_path}"
            ) from err
        finally:
            log.close()
            notify.close()
            shutil.rmtree(sock_dir, ignore_errors=True)
            sub.close()

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
