"""A daemon test site: a tiny identity-sensitive model, an enrolled registry, a running daemon.

Imported by the conftest of tests/daemon and tests/reliability, which re-export the fixtures.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegate.config import FacegateConfig, parse_config
from facegate.daemon.app import FacegateDaemon

TINY_SIZE = 112
TINY_DIM = 16


@pytest.fixture(scope="session")
def exact_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model whose head scores a crop against itself near 1 and against a
    different face well below: enough to test the daemon's flows, not its accuracy.

    Score = sigmoid(bias - k * L1(a, b)) on unit-norm 16-d embeddings.
    """
    from facegate.face.align import DEFAULT_TEMPLATE
    from facegate.model.bundle import save_model_dir
    from facegate.model.compact import make_compact_embedding
    from facegate.model.manifest import Thresholds
    from facegate.model.siamese import make_siamese

    siamese: Any = make_siamese(make_compact_embedding(TINY_SIZE, TINY_DIM))
    layer = siamese.get_layer("classifier")
    layer.set_weights([np.full((TINY_DIM, 1), -400.0, np.float32), np.array([4.0], np.float32)])
    out = tmp_path_factory.mktemp("models") / "exact"
    save_model_dir(
        siamese,
        out,
        name="exact-tiny",
        arch="compact",
        template=DEFAULT_TEMPLATE,
        thresholds=Thresholds(detection=0.9, verification=0.2),
        training={"data": "none: untrained tower, hand-set head"},
    )
    return out


def person(lfw_images: Path, name: str, n: int) -> list[Path]:
    return sorted((lfw_images / name).glob("*.jpg"))[:n]


@pytest.fixture
def site(tmp_path: Path, mqtt_broker, exact_model_dir: Path, lfw_images: Path) -> FacegateConfig:
    """A data dir with one enrolled person, and a config pointing at the test broker."""
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    config = parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "model": {"path": str(exact_model_dir)},
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
            "source": {"kind": "none"},
            "lockout": {"max_failures": 3},
            "enrollment": {"duplicate_similarity": 0.99999},
            "heartbeat": {"interval_s": 1},
        }
    )
    registry = open_registry(config.storage)
    pipeline, model = load_tools(registry, config)
    enroll(registry, pipeline, model, "Ada", person(lfw_images, "Colin_Powell", 4), config)
    registry.close()
    return config


def folder_site_config(
    tmp_path: Path, broker, exact_model_dir: Path, lfw_images: Path, fps: float, **sections: dict
) -> FacegateConfig:
    """A config whose source replays a folder of three LFW faces (Colin Powell, then two
    strangers), deciding every frame: one-frame bursts, no lockout; ``sections`` add keys."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, name in enumerate(["Colin_Powell", "George_W_Bush", "Tony_Blair"]):
        (frames / f"{i}.jpg").write_bytes(person(lfw_images, name, 1)[0].read_bytes())
    base = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "model": {"path": str(exact_model_dir)},
        "mqtt": {"host": broker.host, "port": broker.port},
        "source": {"kind": "folder", "folder": str(frames), "fps": fps},
        "motion": {"cooldown_s": 0, "min_area": 0.001},
        "decision": {"burst_frames": 1},
        "lockout": {"enabled": False},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return parse_config(base)


def write_config(config: FacegateConfig, path: Path) -> Path:
    """Write ``config`` as a TOML file ``facegate run --config`` accepts; return ``path``."""
    data = config.model_dump(mode="json")
    data["mqtt"]["password"] = ""
    data["source"]["url"] = ""
    lines: list[str] = []
    for section, values in data.items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
        else:
            lines.insert(0, f"{section} = {json.dumps(values)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_daemon(config: FacegateConfig) -> tuple[FacegateDaemon, threading.Thread]:
    daemon = FacegateDaemon(config)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    assert daemon.ready.wait(60), "the daemon did not become ready"
    return daemon, thread


def with_sections(config: FacegateConfig, **sections: dict) -> FacegateConfig:
    data = config.model_dump(mode="json")
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    data["mqtt"]["password"] = ""
    return parse_config(data)
