"""The README's quickstart, command by command, with the packaged model and real LFW photos."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_support import Listener

from facegate.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

ENROLL = [
    'facegate enroll "Colin Powell" $LFW/Colin_Powell --config deploy/quickstart.toml',
    'facegate enroll "Tony Blair" $LFW/Tony_Blair --config deploy/quickstart.toml',
]
FRAMES = (
    "cp $LFW/Colin_Powell/Colin_Powell_0050.jpg "
    "$LFW/George_W_Bush/George_W_Bush_0010.jpg quickstart-frames/"
)
RUN = "facegate run --config deploy/quickstart.toml"
SNAPSHOT = "mosquitto_pub -t facegate/front_door/image -f $LFW/Tony_Blair/Tony_Blair_0100.jpg"


def test_readme_holds_these_commands() -> None:
    for command in [
        *ENROLL,
        FRAMES,
        RUN,
        SNAPSHOT,
        "facegate users list --config deploy/quickstart.toml",
    ]:
        assert command in README, command


@pytest.mark.slow
def test_quickstart(
    tmp_path: Path, lfw_images: Path, mqtt_broker, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (tmp_path / "deploy").mkdir()
    config = (ROOT / "deploy" / "quickstart.toml").read_text()
    # The only change: the test's own broker instead of localhost:1883.
    config += f'\n[mqtt]\nhost = "{mqtt_broker.host}"\nport = {mqtt_broker.port}\n'
    (tmp_path / "deploy" / "quickstart.toml").write_text(config)
    monkeypatch.chdir(tmp_path)
    for command in ENROLL:
        name = command.split('"')[1]
        folder = lfw_images / command.split("$LFW/")[1].split()[0]
        assert main(["enroll", name, str(folder), "--config", "deploy/quickstart.toml"]) == 0
    assert main(["users", "list", "--json", "--config", "deploy/quickstart.toml"]) == 0
    out = capsys.readouterr().out
    names = {u["name"] for u in json.loads(out[out.index("[") :])}
    assert names == {"Colin Powell", "Tony Blair"}
    frames = tmp_path / "quickstart-frames"
    frames.mkdir()
    for source in FRAMES.split()[1:-1]:
        shutil.copy(lfw_images / source.removeprefix("$LFW/"), frames)

    watcher = Listener(mqtt_broker, ["facegate/front_door/access"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegate", *RUN.split()[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        seen: dict[str, str] = {}
        while len(seen) < 2:
            event = json.loads(watcher.wait_for("facegate/front_door/access", timeout=120)[1])
            seen[event["user"] or "stranger"] = event["event_type"]
        snapshot = lfw_images / SNAPSHOT.split("$LFW/")[1]
        watcher.publish("facegate/front_door/image", snapshot.read_bytes())
        while True:
            event = json.loads(watcher.wait_for("facegate/front_door/access", timeout=60)[1])
            if event["trigger"]["kind"] == "image":
                break
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        watcher.close()
    assert seen == {"Colin Powell": "granted", "stranger": "denied"}
    assert (event["event_type"], event["user"]) == ("granted", "Tony Blair")
