"""``facegate[edge]``: a fresh virtual environment with the edge install and no TensorFlow
runs the door (model info, verify, enroll, run deciding an image trigger over MQTT) on LiteRT.

The venv is real: ``python -m venv`` and ``pip install -e 'ROOT[edge]'`` from the configured
package mirror, resolved by pip from pyproject.toml, so a TensorFlow dependency that creeps
back into the core install fails here (about 40 s on an idle 2-core box: marked slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mqtt_support import Listener

ROOT = Path(__file__).resolve().parents[2]
DOOR = "edge_door"
TF_EXTRA = "pip install 'facegate[tensorflow]'"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding ``facegate[edge]`` (editable, this checkout) and its dependencies."""
    venv = tmp_path_factory.mktemp("edge") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    started = time.monotonic()
    # This interpreter's pip installs into the new venv (--python): no pip bootstrap there.
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "-e",
            f"{ROOT}[edge]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    print(f"edge install: {time.monotonic() - started:.1f} s")
    return venv


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _facegate(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(venv / "bin" / "facegate"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def _write_config(
    path: Path,
    data_dir: Path,
    broker=None,
    runtime: str | None = None,
    variant: str | None = None,
) -> Path:
    lines = [f'door = "{DOOR}"', "[storage]", f'data_dir = "{data_dir}"', "[model]"]
    if runtime is not None:
        lines.append(f'runtime = "{runtime}"')
    if variant is not None:
        lines.append(f'variant = "{variant}"')
    if broker is not None:
        lines += ["[mqtt]", f'host = "{broker.host}"', f"port = {broker.port}"]
    lines += ["[source]", 'kind = "none"', "[lockout]", "enabled = false"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_no_tensorflow_in_the_edge_venv(edge_venv: Path) -> None:
    python = str(edge_venv / "bin" / "python")
    probe = "import importlib.util as u; print(u.find_spec('tensorflow'), u.find_spec('keras'))"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=_env())
    assert done.stdout.split() == ["None", "None"], done.stderr
    done = subprocess.run([python, "-c", "import tensorflow"], capture_output=True, env=_env())
    assert done.returncode != 0
    # The core install's OpenCV is the headless build.
    done = subprocess.run(
        [python, "-c", "import cv2; print(cv2.getBuildInformation())"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    from facegate.cli.live_cmd import opencv_has_gui

    assert done.returncode == 0 and not opencv_has_gui(done.stdout)


def test_model_info_and_verify_on_litert(edge_venv: Path, tmp_path: Path, lfw_images: Path) -> None:
    config = _write_config(tmp_path / "auto.toml", tmp_path / "data")
    info = json.loads(
        _facegate(edge_venv, "--config", str(config), "model", "info", "--json").stdout
    )
    assert info["runtime"] == "litert"  # auto: the packaged model has a LiteRT export
    assert "int8" in info["tflite"] and info["params"] is None
    litert = _write_config(tmp_path / "litert.toml", tmp_path / "data", runtime="litert")
    colin = sorted((lfw_images / "Colin_Powell").glob("*.jpg"))
    tony = lfw_images / "Tony_Blair" / "Tony_Blair_0001.jpg"
    same = _facegate(edge_venv, "--config", str(litert), "verify", str(colin[0]), str(colin[1]))
    assert same.stdout.startswith("MATCH"), same.stdout
    other = _facegate(
        edge_venv, "--config", str(litert), "verify", str(colin[0]), str(tony), "--json"
    )
    assert json.loads(other.stdout)["match"] is False
    # The fast variant runs from the same int8 file, still without TensorFlow.
    fast = _write_config(tmp_path / "fast.toml", tmp_path / "data", variant="fast")
    for other_image, expected in ((colin[1], True), (tony, False)):
        pair = (str(colin[0]), str(other_image))
        done = _facegate(edge_venv, "--config", str(fast), "verify", *pair, "--json")
        assert json.loads(done.stdout)["match"] is expected, done.stdout


def test_commands_that_need_tensorflow_say_which_extra(edge_venv: Path, tmp_path: Path) -> None:
    config = _write_config(tmp_path / "tf.toml", tmp_path / "data", runtime="tensorflow")
    for args in (
        ["train", "--mode", "identity", "--data", str(tmp_path), "--out", str(tmp_path / "o")],
        ["model", "export", "--format", "tflite", "--out", str(tmp_path / "copy")],
        ["model", "info", "--arch", "compact"],
        ["--config", str(config), "model", "info"],
    ):
        done = _facegate(edge_venv, *args, check=False)
        assert done.returncode == 1, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and TF_EXTRA in lines[0], (args, done.stderr)
    assert not (tmp_path / "copy").exists()


def test_enroll_and_run_decide_an_image_trigger(
    edge_venv: Path, tmp_path: Path, lfw_images: Path, mqtt_broker
) -> None:
    config = _write_config(tmp_path / "door.toml", tmp_path / "data", broker=mqtt_broker)
    photos = tmp_path / "tony"
    photos.mkdir()
    for image in sorted((lfw_images / "Tony_Blair").glob("*.jpg"))[:12]:
        (photos / image.name).symlink_to(image)
    _facegate(edge_venv, "--config", str(config), "enroll", "Tony Blair", str(photos))
    watcher = Listener(mqtt_broker, [f"facegate/{DOOR}/access", f"facegate/{DOOR}/availability"])
    proc = subprocess.Popen(
        [str(edge_venv / "bin" / "facegate"), "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        watcher.wait_for(f"facegate/{DOOR}/availability", b"online", timeout=120)
        for image, expected in (
            (lfw_images / "Tony_Blair" / "Tony_Blair_0100.jpg", ("granted", "Tony Blair")),
            (lfw_images / "George_W_Bush" / "George_W_Bush_0010.jpg", ("denied", None)),
        ):
            watcher.publish(f"facegate/{DOOR}/image", image.read_bytes())
            event = json.loads(watcher.wait_for(f"facegate/{DOOR}/access", timeout=60)[1])
            assert (event["event_type"], event["user"]) == expected, event
    finally:
        proc.terminate()
        status = proc.wait(30)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        watcher.close()
    assert status == 0, stderr[-3000:]
    assert "LiteRT" in stderr or "litert" in stderr.lower(), stderr[-3000:]
    # Site retraining needs TensorFlow: the job is skipped, saying which extra brings it.
    retrain = _facegate(edge_venv, "--config", str(config), "jobs", "run", "retrain")
    assert retrain.stdout.strip() == f"retrain: skipped: retraining needs TensorFlow: {TF_EXTRA}"
