"""The guides' commands: every shell line of docs/door_controller.md and
deploy/homeassistant/README.md is listed here with what exercises it, and those this machine
can run are run (with paths, hosts and passwords swapped for the test's)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from deploy_support import DEPLOY, PASSWORDS, ROOT
from mqtt_support import Listener

from facegate.cli.main import main
from facegate.config import parse_config

GUIDES = (ROOT / "docs" / "door_controller.md", DEPLOY / "homeassistant" / "README.md")
NEEDS_SYSTEMD = "untested here: needs systemd as PID 1 on a real host"
NEEDS_ROOT_INSTALL = "untested here: copies a tested deploy/ file into /etc"

# Each guide command, and what exercises it.
EXERCISED: dict[str, str] = {
    "sudo python3 -m venv /opt/facegate": ".ci/run (the same venv + pip install, into .venv)",
    "sudo /opt/facegate/bin/python -m pip install '.[edge]'": (
        "test_edge_install.py::test_enroll_and_run_decide_an_image_trigger "
        "(pip install -e '.[edge]' into a fresh venv)"
    ),
    "sudo install -m 644 deploy/systemd/facegate.sysusers.conf /etc/sysusers.d/facegate.conf": (
        NEEDS_ROOT_INSTALL
    ),
    "sudo systemd-sysusers": "test_systemd_unit.py::test_sysusers_creates_the_service_user",
    "sudo install -d -m 755 /etc/facegate": NEEDS_ROOT_INSTALL,
    "sudo install -m 644 deploy/facegate.example.toml /etc/facegate/facegate.toml": (
        "test_guides.py::test_config_check_of_the_installed_example"
    ),
    "sudo /opt/facegate/bin/facegate config check /etc/facegate/facegate.toml": (
        "test_guides.py::test_config_check_of_the_installed_example"
    ),
    "sudo apt-get install mosquitto mosquitto-clients": ".ci/run (installs them)",
    "sudo install -m 644 deploy/mosquitto/mosquitto.conf /etc/mosquitto/conf.d/facegate.conf": (
        "test_mosquitto.py (mosquitto runs this file)"
    ),
    "sudo install -m 644 deploy/mosquitto/acl /etc/mosquitto/facegate.acl": (
        "test_mosquitto.py (mosquitto runs this ACL)"
    ),
    "sudo sh deploy/mosquitto/make-passwords.sh": "test_mosquitto.py::test_make_passwords_script",
    "sudo systemctl restart mosquitto": NEEDS_SYSTEMD,
    "sudo install -m 644 deploy/systemd/facegate.service deploy/systemd/facegate-doctor.service "
    "/etc/systemd/system/": "test_systemd_unit.py::test_systemd_analyze_verify (the units)",
    "sudo systemctl daemon-reload": NEEDS_SYSTEMD,
    "sudo systemctl enable --now facegate": NEEDS_SYSTEMD,
    "journalctl -u facegate -f": NEEDS_SYSTEMD,
    'sudo -u facegate /opt/facegate/bin/facegate --config /etc/facegate/facegate.toml enroll "Ada '
    'Lovelace" /home/pi/photos/ada': "test_guides.py::test_enroll_then_doctor_galleries",
    "sudo systemctl restart facegate": NEEDS_SYSTEMD,
    "sudo systemctl stop facegate": NEEDS_SYSTEMD,
    "sudo /opt/facegate/bin/python -m pip install --upgrade '.[edge]'": (
        "test_edge_install.py::test_no_tensorflow_in_the_edge_venv (the same install)"
    ),
    "sudo -u facegate /opt/facegate/bin/facegate --config /etc/facegate/facegate.toml db upgrade": (
        "test_guides.py::test_db_upgrade_then_doctor_registry"
    ),
    "sudo systemctl start facegate": NEEDS_SYSTEMD,
    "sudo systemctl start facegate-doctor": NEEDS_SYSTEMD + " (the unit: test_systemd_unit.py)",
    "journalctl -u facegate-doctor -o cat -n 12 --no-pager": NEEDS_SYSTEMD,
    "facegate doctor --config /etc/facegate/facegate.toml --check broker --check disk": (
        "test_guides.py::test_doctor_command_of_the_guide"
    ),
    "mosquitto_pub -h 192.168.1.10 -u doorbell -P DOORBELL_PASSWORD -q 1 -t "
    'facegate/front_door/trigger -m \'{"source": "doorbell"}\'': (
        "test_guides.py::test_doorbell_and_watch_commands"
    ),
    "mosquitto_sub -h 192.168.1.10 -u homeassistant -P HA_PASSWORD -v -t 'facegate/#'": (
        "test_guides.py::test_doorbell_and_watch_commands"
    ),
}


def _blocks(kind: str) -> list[str]:
    found = []
    for guide in GUIDES:
        found += re.findall(rf"^```{kind}\n(.*?)^```", guide.read_text(), re.S | re.M)
    return found


def guide_commands() -> list[str]:
    """Every line of the guides' ```sh blocks."""
    return [line for block in _blocks("sh") for line in block.splitlines() if line.strip()]


def _command(start: str) -> list[str]:
    matches = [c for c in guide_commands() if c.startswith(start)]
    assert len(matches) == 1, matches
    return shlex.split(matches[0])


def test_every_guide_command_is_accounted_for() -> None:
    commands = guide_commands()
    assert sorted(set(commands)) == sorted(EXERCISED), "update EXERCISED with the guides"


def test_referenced_tests_exist() -> None:
    here = Path(__file__).parent
    for how in EXERCISED.values():
        ref = re.match(r"(test_\w+\.py)::(test_\w+)", how)
        if ref:
            assert f"def {ref.group(2)}(" in (here / ref.group(1)).read_text(), how


def test_toml_snippets_are_valid_config() -> None:
    blocks = _blocks("toml")
    assert len(blocks) >= 2
    for block in blocks:
        parse_config(tomllib.loads(block), "guide snippet")


def test_config_check_of_the_installed_example(tmp_path: Path, capsys) -> None:
    """The example installed as the guide says, with the guide's edits, passes the check."""
    installed = tmp_path / "facegate.toml"
    shutil.copy(DEPLOY / "facegate.example.toml", installed)
    assert main(["config", "check", str(installed)]) == 0
    data = tomllib.loads(installed.read_text())
    for block in _blocks("toml"):
        for section, values in tomllib.loads(block).items():
            data[section] = {**data.get(section, {}), **values}
    config = parse_config(data)
    assert str(config.storage.data_dir) == "/var/lib/facegate"
    assert config.mqtt.username == "facegate"
    assert "ok (door front_door" in capsys.readouterr().out


def test_gpio_drop_in_verifies(tmp_path: Path) -> None:
    """The guide's relay drop-in, applied to the service, passes systemd-analyze verify."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    (drop_in,) = _blocks("ini")
    assert "DeviceAllow=char-gpiochip rw" in drop_in
    unit = (DEPLOY / "systemd" / "facegate.service").read_text()
    unit = re.sub(r"^ExecStart=.*$", "ExecStart=/bin/true", unit, flags=re.M)
    unit = unit.replace("[Install]", drop_in.replace("[Service]\n", "") + "\n[Install]")
    copy = tmp_path / "facegate.service"
    copy.write_text(unit)
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "facegate.service" not in done.stderr, done.stderr


def _site(tmp_path: Path, acl_broker, monkeypatch, **extra: str) -> Path:
    monkeypatch.setenv("FACEGATE_TEST_MQTT_PASSWORD", PASSWORDS["facegate"])
    path = tmp_path / "facegate.toml"
    lines = [
        "[storage]",
        f'data_dir = "{tmp_path / "data"}"',
        "[mqtt]",
        f'host = "{acl_broker.host}"',
        f"port = {acl_broker.port}",
        'username = "facegate"',
        'password_env = "FACEGATE_TEST_MQTT_PASSWORD"',
        '[source]\nkind = "none"',
        *extra.values(),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _with_config(argv: list[str], config: Path) -> list[str]:
    """The guide's arguments after the facegate program, its --config FILE now ``config``."""
    program = next(
        i
        for i, arg in enumerate(argv)
        if arg.endswith("/bin/facegate") or (arg == "facegate" and (i == 0 or argv[i - 1] != "-u"))
    )
    args = argv[program + 1 :]
    args[args.index("--config") + 1] = str(config)
    return args


def test_doctor_command_of_the_guide(tmp_path: Path, acl_broker, monkeypatch, capsys) -> None:
    argv = _command("facegate doctor ")
    config = _site(tmp_path, acl_broker, monkeypatch)
    assert main(_with_config(argv, config)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["broker", "disk"]


def test_db_upgrade_then_doctor_registry(tmp_path: Path, acl_broker, monkeypatch, capsys) -> None:
    argv = _command(
        "sudo -u facegate /opt/facegate/bin/facegate --config /etc/facegate/facegate.toml db"
    )
    config = _site(tmp_path, acl_broker, monkeypatch)
    assert main(_with_config(argv, config)) == 0
    assert main(["--config", str(config), "doctor", "--check", "registry"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("ok    registry")


@pytest.mark.slow
def test_enroll_then_doctor_galleries(
    tmp_path: Path, acl_broker, monkeypatch, capsys, tiny_model_dir: Path, lfw_images: Path
) -> None:
    argv = _command(
        "sudo -u facegate /opt/facegate/bin/facegate --config /etc/facegate/facegate.toml enroll"
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sorted((lfw_images / "Colin_Powell").glob("*.jpg"))[:4]:
        shutil.copy(src, photos / src.name)
    model = f'[model]\npath = "{tiny_model_dir}"\n[enrollment]\nduplicate_similarity = 0.99999'
    config = _site(tmp_path, acl_broker, monkeypatch, model=model)
    args = _with_config(argv, config)
    args[-1] = str(photos)
    assert main(args) == 0, capsys.readouterr()
    capsys.readouterr()
    assert main(["--config", str(config), "doctor", "--check", "galleries"]) == 0
    assert "1 active users, 4 images embedded" in capsys.readouterr().out


def _swap(argv: list[str], broker, password: str) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] == "-h":
            out += [broker.host, "-p", str(broker.port)]
            continue
        if i and argv[i - 1] == "-P":
            out.append(password)
            continue
        out.append(arg)
    return out


def test_doorbell_and_watch_commands(acl_broker) -> None:
    """Watch with the README's mosquitto_sub (as homeassistant) while the README's doorbell
    command rings (as doorbell): the trigger arrives, and the ACL lets both through."""
    pub = shutil.which("mosquitto_pub")
    sub = shutil.which("mosquitto_sub")
    if pub is None or sub is None:
        pytest.skip("mosquitto-clients is not installed")
    watch = _swap(_command("mosquitto_sub "), acl_broker, PASSWORDS["homeassistant"])
    watcher = subprocess.Popen(
        [sub, *watch[1:], "-C", "1", "-W", "15"], stdout=subprocess.PIPE, text=True
    )
    door = Listener(
        acl_broker,
        ["facegate/front_door/trigger"],
        username="facegate",
        password=PASSWORDS["facegate"],
    )
    try:
        ring = _swap(_command("mosquitto_pub "), acl_broker, PASSWORDS["doorbell"])
        deadline_tries = 50
        out = ""
        for _ in range(deadline_tries):
            subprocess.run([pub, *ring[1:]], check=True, timeout=10)
            try:
                out, _err = watcher.communicate(timeout=0.3)
                break
            except subprocess.TimeoutExpired:
                continue
        assert out.strip() == 'facegate/front_door/trigger {"source": "doorbell"}'
        assert door.wait_for("facegate/front_door/trigger")[1] == b'{"source": "doorbell"}'
    finally:
        door.close()
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


def test_changing_one_password_with_mosquitto_passwd(tmp_path: Path, broker_factory) -> None:
    """The guide's `mosquitto_passwd -b FILE USER PASSWORD` changes one login."""
    from deploy_support import MOSQUITTO_DIR, deploy_broker_config, make_password_file
    from test_mosquitto import _connack

    passwd = make_password_file(tmp_path / "passwd", PASSWORDS)
    text = (ROOT / "docs" / "door_controller.md").read_text()
    assert "`mosquitto_passwd -b /etc/mosquitto/facegate.passwd USER PASSWORD`" in text
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None
    subprocess.run([tool, "-b", str(passwd), "doorbell", "a-new-one"], check=True, timeout=30)
    broker = broker_factory(deploy_broker_config(passwd, MOSQUITTO_DIR / "acl"))
    assert _connack(broker.host, broker.port, "doorbell", "a-new-one") == "Success"
    assert _connack(broker.host, broker.port, "doorbell", PASSWORDS["doorbell"]) != "Success"


def test_guide_example_answer_is_what_doctor_prints(
    tmp_path: Path, acl_broker, monkeypatch, capsys
) -> None:
    """The guide's sample FAIL line is doctor's real output for a refused password."""
    (sample,) = _blocks("text")
    config = _site(tmp_path, acl_broker, monkeypatch)
    monkeypatch.setenv("FACEGATE_TEST_MQTT_PASSWORD", "wrong")
    assert main(["--config", str(config), "doctor", "--check", "broker"]) == 1
    got = capsys.readouterr().out.strip()
    where = f"{acl_broker.host}:{acl_broker.port}"
    assert got.replace(where, "localhost:1883") == sample.strip()
