"""Benchmark issue 8's speed and scale: trigger to decision, gallery scale, idle cost, peers.

Usage: python bench/bench_decision.py [--quick] [--lfw DIR] [--out FILE]

1. Trigger to decision as in production: a private mosquitto on a free loopback port, a few LFW
   people enrolled with the packaged default model in a temporary registry, the real daemon
   (``FacegateDaemon`` in a thread, no camera); a subscriber publishes LFW JPEGs (enrolled
   people and strangers) on ``facegate/<door>/image`` and times each until its access event.
   Side by side: mosquitto as installed (Nagle on towards clients) and ``set_tcp_nodelay true``.
2. Gallery scale: ``match_probe`` + ``judge_frame`` over synthetic galleries of 10 to 100,000
   unit embeddings with the default model's head, alone and added to a measured detect+embed.
3. Idle cost: ``python -m facegate run`` watching one still image looped at 10 fps with motion
   on; CPU share of one core from /proc/<pid>/stat.
4. Peers on the same frames: the seed's one-``predict``-per-gallery-image loop (50 images, the
   untrained seed architecture) and the face_recognition library when importable.

Prints one table with the issue's targets beside each number and writes JSON (default
bench/results/decision.json).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from facegate.config import FacegateConfig, parse_config  # noqa: E402

logger = logging.getLogger("bench_decision")

DOOR = "front_door"
ENROLLED = ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld")
STRANGERS = ("Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi")
GALLERY_PER_USER = 5
SCALES = (10, 1_000, 10_000, 100_000)
IMAGES_PER_SYNTHETIC_USER = 5
TARGETS = {
    "trigger_median_ms": 60.0,
    "seed_speedup": 50.0,
    "scale_ratio": 1.5,
    "idle_cpu_pct": 5.0,
    "face_recognition_speedup": 10.0,
}


def default_lfw() -> Path:
    """LFW's image tree from FACEGATE_TEST_DATA (default ../shared/data)."""
    data = Path(os.environ.get("FACEGATE_TEST_DATA", ROOT.parent / "shared" / "data"))
    return data / "lfw" / "lfw-deepfunneled"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, linear interpolation."""
    return float(np.percentile(np.asarray(values, np.float64), q))


def summary_ms(values: list[float]) -> dict[str, float]:
    """Median and p95 of millisecond samples, rounded."""
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 3),
        "p95_ms": round(pct(values, 95), 3),
    }


class Broker:
    """A private mosquitto on a free loopback port (the few lines the tests' Broker needs)."""

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

    def __init__(self, broker: Broker, topics: list[str]) -> None:
        import queue

        import paho.mqtt.client as mqtt

        self.messages: queue.Queue[tuple[float, str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-decision")
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
        import queue

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


def base_config(data_dir: Path, broker: Broker, **sections: dict) -> FacegateConfig:
    """The bench's door: a temp registry, the private broker, no lockout or grant cooldown."""
    data: dict[str, Any] = {
        "door": DOOR,
        "storage": {"data_dir": str(data_dir)},
        "mqtt": {"host": broker.host, "port": broker.port},
        "source": {"kind": "none"},
        "lockout": {"enabled": False},
        "decision": {"grant_cooldown_s": 0},
        "logging": {"level": "WARNING"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data)


def photos(lfw: Path, name: str) -> list[Path]:
    """Sorted LFW photos of one person."""
    return sorted((lfw / name).glob("*.jpg"))


def enroll_people(config: FacegateConfig, lfw: Path) -> dict[str, Any]:
    """Enroll ENROLLED with their first GALLERY_PER_USER photos; returns throughput."""
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    registry = open_registry(config.storage)
    pipeline, model = load_tools(registry, config)
    t0 = time.perf_counter()
    images = 0
    for name in ENROLLED:
        files = photos(lfw, name)[:GALLERY_PER_USER]
        enroll(registry, pipeline, model, name.split("_")[-1].lower(), files, config)
        images += len(files)
    seconds = time.perf_counter() - t0
    registry.close()
    return {
        "users": len(ENROLLED),
        "images": images,
        "seconds": round(seconds, 2),
        "images_per_s": round(images / seconds, 2),
    }


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


def bench_trigger(config: FacegateConfig, broker: Broker, lfw: Path, count: int) -> dict:
    """Publish LFW JPEGs on the image topic one at a time; time each to its access event."""
    from facegate.daemon.app import FacegateDaemon

    daemon = FacegateDaemon(config)
    topics = daemon.topics
    sub = Subscriber(broker, [topics.access, topics.availability])
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        if not daemon.ready.wait(120):
            raise SystemExit("the daemon did not become ready")
        sub.wait_for(topics.availability, b"online", timeout=30)
        probes = probe_files(lfw, count)
        warm = probes[0][1].read_bytes()
        for _ in range(3):  # first calls trace tf.functions
            sub.client.publish(topics.image, warm)
            sub.wait_for(topics.access)
        walls: list[float] = []
        reported: list[float] = []
        outside: list[float] = []
        outcomes: dict[str, dict[str, int]] = {"enrolled": {}, "stranger": {}}
        for kind, path in probes:
            payload = path.read_bytes()
            sub.drain()
            t0 = time.perf_counter()
            sub.client.publish(topics.image, payload)
            t1, _, body = sub.wait_for(topics.access)
            walls.append((t1 - t0) * 1e3)
            event = json.loads(body)
            if event.get("latency_ms") is not None:
                reported.append(float(event["latency_ms"]))
                outside.append(walls[-1] - reported[-1])
            key = f"{event.get('event_type')}:{event.get('reason')}"
            outcomes[kind][key] = outcomes[kind].get(key, 0) + 1
    finally:
        daemon.stop()
        thread.join(30)
        sub.close()
    return {
        "decisions": len(walls),
        "wall": summary_ms(walls),
        "event_latency": summary_ms(reported) if reported else None,
        # Wall minus the event's own clock: MQTT in, the durable access-log/outbox write and
        # the outbox's publish, MQTT out.
        "outside_event_clock": summary_ms(outside) if outside else None,
        "outcomes": outcomes,
    }


def face_and_embed_ms(config: FacegateConfig, lfw: Path, repeats: int) -> dict[str, Any]:
    """Median detect+align and embed times of one LFW photo with the default model."""
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import load_model_dir

    model = load_model_dir(None, config.model.runtime)
    pipeline = FacePipeline(config.face, model.manifest.align_spec)
    rgb = cv2.cvtColor(cv2.imread(str(photos(lfw, ENROLLED[0])[20])), cv2.COLOR_BGR2RGB)
    jpeg = photos(lfw, ENROLLED[0])[20].read_bytes()
    decode_ms, face_ms, embed_ms = [], [], []
    for i in range(repeats + 3):
        td = time.perf_counter()
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        result = pipeline.process(rgb)
        t1 = time.perf_counter()
        if result.face is None:
            raise SystemExit("no face found in the timing photo")
        model.embed(result.face.crop[None])
        t2 = time.perf_counter()
        if i >= 3:
            decode_ms.append((t0 - td) * 1e3)
            face_ms.append((t1 - t0) * 1e3)
            embed_ms.append((t2 - t1) * 1e3)
    return {
        "model": model.manifest.name,
        "dim": int(model.head.kernel.shape[0]),
        "head": model.head,
        "thresholds": model.manifest.thresholds,
        "decode_ms": statistics.median(decode_ms),
        "face_ms": statistics.median(face_ms),
        "embed_ms": statistics.median(embed_ms),
    }


def synthetic_gallery(rows: int, dim: int, rng: np.random.Generator) -> Any:
    """A GalleryMatrix of ``rows`` random unit vectors in users of 5 images each."""
    from facegate.storage.records import GalleryMatrix, User

    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    user_ids = np.arange(rows, dtype=np.int64) // IMAGES_PER_SYNTHETIC_USER + 1
    now = datetime.now(UTC)
    users = {
        int(u): User(int(u), f"u{u}", f"User {u}", True, None, None, None, True, now, now)
        for u in np.unique(user_ids)
    }
    return GalleryMatrix("synthetic", vectors, user_ids, np.arange(rows, dtype=np.int64), users)


def bench_scale(config: FacegateConfig, tools: dict[str, Any], probes: int) -> dict:
    """match_probe + judge_frame at each gallery size: median ms, and the matrix's memory."""
    from facegate.daemon.decision import judge_frame
    from facegate.daemon.matching import MatchIndex, match_probe

    rng = np.random.default_rng(8)
    dim, head, thresholds = tools["dim"], tools["head"], tools["thresholds"]
    queries = rng.standard_normal((probes, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out: dict[str, Any] = {}
    for rows in SCALES:
        index = MatchIndex.from_gallery(synthetic_gallery(rows, dim, rng))
        for q in queries[:5]:
            judge_frame(match_probe(q, index, head, thresholds), thresholds, config.decision.margin)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            match = match_probe(q, index, head, thresholds)
            judge_frame(match, thresholds, config.decision.margin)
            times.append((time.perf_counter() - t0) * 1e3)
        match_ms = statistics.median(times)
        out[str(rows)] = {
            "match_median_ms": round(match_ms, 4),
            "match_p95_ms": round(pct(times, 95), 4),
            "decision_ms": round(tools["face_ms"] + tools["embed_ms"] + match_ms, 3),
            "matrix_mb": round(index.embeddings.nbytes / 2**20, 2),
        }
    small, large = out[str(SCALES[0])], out[str(SCALES[-1])]
    return {
        "sizes": out,
        "decode_ms": round(tools["decode_ms"], 3),
        "face_ms": round(tools["face_ms"], 3),
        "embed_ms": round(tools["embed_ms"], 3),
        "match_ratio": round(large["match_median_ms"] / small["match_median_ms"], 2),
        "decision_ratio": round(large["decision_ms"] / small["decision_ms"], 3),
    }


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def bench_idle(data_dir: Path, broker: Broker, lfw: Path, work: Path, seconds: float) -> dict:
    """CPU share of ``python -m facegate run`` watching one still image at 10 fps."""
    folder = work / "still"
    folder.mkdir()
    shutil.copy(photos(lfw, STRANGERS[0])[0], folder / "still.jpg")
    config_file = work / "idle.toml"
    config_file.write_text(
        f'door = "{DOOR}"\n'
        f'[storage]\ndata_dir = "{data_dir}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'[source]\nkind = "folder"\nfolder = "{folder}"\nloop = true\nfps = 10\n'
        "[motion]\nenabled = true\n"
        '[logging]\nlevel = "WARNING"\n'
    )
    sub = Subscriber(broker, [f"facegate/{DOOR}/availability", f"facegate/{DOOR}/access"])
    sub.drain()
    log = open(work / "idle_daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegate", "run", "--config", str(config_file)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sub.wait_for(f"facegate/{DOOR}/availability", b"online", timeout=120)
        time.sleep(3.0)  # let start-up work (first frames, motion background) settle
        hz = os.sysconf("SC_CLK_TCK")
        before, t0 = cpu_ticks(proc.pid), time.monotonic()
        time.sleep(seconds)
        after, elapsed = cpu_ticks(proc.pid), time.monotonic() - t0
        rss_kb = next(
            int(line.split()[1])
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        decisions = 0
        while not sub.messages.empty():
            decisions += sub.messages.get_nowait()[1].endswith("/access")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        sub.close()
    return {
        "seconds": round(elapsed, 1),
        "fps": 10,
        "cpu_pct_of_core": round(100.0 * (after - before) / hz / elapsed, 2),
        "rss_mb": round(rss_kb / 1024, 1),
        "decisions_during_idle": decisions,
    }


def bench_peers(lfw: Path, repeats: int, trigger_medians: dict[str, float]) -> dict:
    """The seed's verification loop and face_recognition on the same frame."""
    from bench_pipeline import GALLERY_SIZE, bench_seed_loop, make_frame

    from facegate.model.seed import make_siamese_model

    face = cv2.cvtColor(cv2.imread(str(photos(lfw, ENROLLED[0])[20])), cv2.COLOR_BGR2RGB)
    frame = make_frame(face)
    gallery = photos(lfw, ENROLLED[0])[:GALLERY_SIZE]
    seed = bench_seed_loop(make_siamese_model(), frame, gallery, repeats)
    seed["speedup"] = {
        k: round(seed["median_s"] * 1000 / ms, 1) for k, ms in trigger_medians.items()
    }
    out: dict[str, Any] = {"seed_loop": seed}
    try:
        import face_recognition  # type: ignore[import-not-found]
    except ImportError:
        out["face_recognition"] = {"skipped": "face_recognition is not importable in this venv"}
        return out
    encodings = []
    for path in gallery:
        found = face_recognition.face_encodings(face_recognition.load_image_file(str(path)))
        if found:
            encodings.append(found[0])
    times = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        boxes = face_recognition.face_locations(frame)
        probe = face_recognition.face_encodings(frame, boxes)
        if probe:
            face_recognition.compare_faces(encodings, probe[0])
        times.append((time.perf_counter() - t0) * 1e3)
    median = statistics.median(times)
    out["face_recognition"] = {
        "median_ms": round(median, 1),
        "speedup": {k: round(median / ms, 1) for k, ms in trigger_medians.items()},
    }
    return out


def verdict(ok: bool | None) -> str:
    """PASS/FAIL/n.a. for a target."""
    return "n.a." if ok is None else ("PASS" if ok else "FAIL")


def trigger_rows(t: dict, label: str) -> list[tuple[str, str, str, str]]:
    """Table rows of one trigger-to-decision run."""
    med = t["wall"]["median_ms"]
    rows = [
        (
            f"image trigger -> event, median [{label}]",
            f"{med:.1f} ms",
            "<= 60 ms",
            verdict(med <= TARGETS["trigger_median_ms"]),
        ),
        (f"image trigger -> event, p95 [{label}]", f"{t['wall']['p95_ms']:.1f} ms", "", ""),
    ]
    if t["event_latency"]:
        ev, gap = t["event_latency"], t["outside_event_clock"]
        rows.append(
            (
                f"  event latency_ms, median / p95 [{label}]",
                f"{ev['median_ms']:.1f} / {ev['p95_ms']:.1f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                f"  wall - latency_ms (log, outbox, MQTT) [{label}]",
                f"{gap['median_ms']:.1f} / {gap['p95_ms']:.1f} ms",
                "",
                "",
            )
        )
    return rows


def print_table(r: dict) -> None:
    """The one table: every number with its target."""
    t, s, i, p = r["trigger"], r["scale"], r["idle"], r["peers"]
    rows: list[tuple[str, str, str, str]] = []
    rows += trigger_rows(t, "mosquitto default")
    rows += trigger_rows(r["trigger_nodelay"], "tcp_nodelay")
    rows.append(("decisions timed", str(t["decisions"]), ">= 200 (full)", ""))
    rows.append(
        (
            "decode / detect+align / embed (one photo)",
            f"{s['decode_ms']:.1f} / {s['face_ms']:.1f} / {s['embed_ms']:.1f} ms",
            "",
            "",
        )
    )
    for size, row in s["sizes"].items():
        rows.append(
            (
                f"gallery {int(size):>7,}: match / decision / matrix",
                f"{row['match_median_ms']:.3f} / {row['decision_ms']:.1f} ms / "
                f"{row['matrix_mb']:.2f} MB",
                "",
                "",
            )
        )
    rows.append(("match alone 100k / 10", f"{s['match_ratio']:.1f}x", "(info)", ""))
    rows.append(
        (
            "whole decision 100k / 10",
            f"{s['decision_ratio']:.3f}x",
            "<= 1.5x",
            verdict(s["decision_ratio"] <= TARGETS["scale_ratio"]),
        )
    )
    rows.append(
        (
            "idle CPU, still scene 10 fps, motion on",
            f"{i['cpu_pct_of_core']:.2f} % core",
            "<= 5 %",
            verdict(i["cpu_pct_of_core"] <= TARGETS["idle_cpu_pct"]),
        )
    )
    rows.append(("idle daemon RSS (tensorflow)", f"{i['rss_mb']:.0f} MB", "(report)", ""))
    seed = p["seed_loop"]
    rows.append(("seed loop, 50 images, one verify", f"{seed['median_s'] * 1000:.0f} ms", "", ""))
    for key, label in (("default", "mosquitto default"), ("nodelay", "tcp_nodelay")):
        rows.append(
            (
                f"speed-up vs seed loop [{label}]",
                f"{seed['speedup'][key]:.0f}x",
                ">= 50x",
                verdict(seed["speedup"][key] >= TARGETS["seed_speedup"]),
            )
        )
    fr = p["face_recognition"]
    if "skipped" in fr:
        rows.append(("face_recognition", "skipped", ">= 10x", verdict(None)))
    else:
        rows.append(("face_recognition, one frame", f"{fr['median_ms']:.0f} ms", "", ""))
        for key, label in (("default", "mosquitto default"), ("nodelay", "tcp_nodelay")):
            rows.append(
                (
                    f"speed-up vs face_recognition [{label}]",
                    f"{fr['speedup'][key]:.1f}x",
                    ">= 10x",
                    verdict(fr["speedup"][key] >= TARGETS["face_recognition_speedup"]),
                )
            )
    e = r["enrollment"]
    rows.append(("enrollment throughput", f"{e['images_per_s']:.1f} images/s", "", ""))
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure':<{width}}  {'value':<32} {'target':<14} verdict")
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:<32} {target:<14} {ok}")
    print(
        f"\nload average before/after: {r['machine']['load_before']} / {r['machine']['load_after']}"
    )
    print(f"outcomes: {json.dumps(t['outcomes'])}")


def main() -> int:
    """Run every part, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions, shorter idle")
    parser.add_argument("--lfw", type=Path, default=default_lfw())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decision.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.lfw.is_dir():
        print(f"LFW not found at {args.lfw}", file=sys.stderr)
        return 2
    decisions, idle_s, seed_repeats, probes = (
        (30, 8.0, 1, 200) if args.quick else (200, 20.0, 3, 1000)
    )
    results: dict[str, Any] = {
        "quick": args.quick,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory(prefix="bench-decision-") as tmp:
        work = Path(tmp)
        # mosquitto as installed (Nagle on towards clients), and with set_tcp_nodelay true.
        broker = Broker(work)
        fast = Broker(work, nodelay=True)
        try:
            config = base_config(work / "data", broker)
            print("enrolling ...", file=sys.stderr)
            results["enrollment"] = enroll_people(config, args.lfw)
            print(f"timing {decisions} image-trigger decisions ...", file=sys.stderr)
            results["trigger"] = bench_trigger(config, broker, args.lfw, decisions)
            print("again, broker with set_tcp_nodelay true ...", file=sys.stderr)
            fast_config = base_config(work / "data", fast)
            results["trigger_nodelay"] = bench_trigger(fast_config, fast, args.lfw, decisions)
            print("gallery scale ...", file=sys.stderr)
            tools = face_and_embed_ms(config, args.lfw, 20)
            results["scale"] = bench_scale(config, tools, probes)
            print(f"idle cost over {idle_s:.0f} s ...", file=sys.stderr)
            results["idle"] = bench_idle(work / "data", broker, args.lfw, work, idle_s)
        finally:
            broker.stop()
            fast.stop()
    print("peers ...", file=sys.stderr)
    results["peers"] = bench_peers(
        args.lfw,
        seed_repeats,
        {
            "default": results["trigger"]["wall"]["median_ms"],
            "nodelay": results["trigger_nodelay"]["wall"]["median_ms"],
        },
    )
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
