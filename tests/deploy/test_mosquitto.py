"""deploy/mosquitto against a real mosquitto: logins, the ACL per user, TLS, the password script.

Refused publishes are observed twice: the MQTT 5 PUBACK says "Not authorized", and a
subscriber allowed to read the topic receives nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from deploy_support import MOSQUITTO_DIR, PASSWORDS, deploy_broker_config, make_password_file
from mqtt_support import Listener
from paho.mqtt.enums import CallbackAPIVersion

from facegate.config import parse_config
from facegate.daemon.mqtt_link import MqttLink
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")


def _connack(host: str, port: int, user: str | None, password: str | None, **tls) -> str:
    """The broker's answer to CONNECT (MQTT 5) as text, e.g. 'Success' or 'Not authorized'."""
    done = threading.Event()
    answer: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user is not None:
        client.username_pw_set(user, password)
    if tls:
        client.tls_set(ca_certs=str(tls["ca"]))

    def on_connect(_c, _u, _f, reason_code, _p) -> None:
        answer.append(str(reason_code))
        done.set()

    client.on_connect = on_connect
    client.connect(host, port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
        return answer[0]
    finally:
        client.disconnect()
        client.loop_stop()


def _puback(broker, user: str, topic: str, payload: bytes = b"x") -> str:
    """Publish at QoS 1 over MQTT 5 as ``user``; the PUBACK reason as text."""
    acks: dict[int, str] = {}
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, PASSWORDS[user])

    def on_publish(_c, _u, mid, reason_code, _p) -> None:
        acks[mid] = str(reason_code)
        got.set()

    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        assert got.wait(10), "no PUBACK"
        return acks[info.mid]
    finally:
        client.disconnect()
        client.loop_stop()


def _nothing_on(listener: Listener, topic: str, wait_s: float = 0.7) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            got = listener.messages.get(timeout=0.1)
        except Exception:  # queue.Empty
            continue
        if got[0] == topic:
            return False
    return True


def _login(user: str) -> dict[str, str]:
    return {"username": user, "password": PASSWORDS[user]}


def test_anonymous_and_wrong_password_are_refused(acl_broker) -> None:
    assert _connack(acl_broker.host, acl_broker.port, None, None) == "Not authorized"
    assert _connack(acl_broker.host, acl_broker.port, "doorbell", "wrong") == "Not authorized"
    assert _connack(acl_broker.host, acl_broker.port, "doorbell", PASSWORDS["doorbell"]) == (
        "Success"
    )


def test_doorbell_triggers_with_the_guide_command(acl_broker) -> None:
    """The doorbell command of deploy/homeassistant/README.md, as written, reaches facegate."""
    mosquitto_pub = shutil.which("mosquitto_pub")
    if mosquitto_pub is None:
        pytest.skip("mosquitto_pub is not installed (apt-get install mosquitto-clients)")
    door = Listener(acl_broker, [TOPICS.trigger], **_login("facegate"))
    try:
        subprocess.run(
            [mosquitto_pub, "-h", acl_broker.host, "-p", str(acl_broker.port),
             "-u", "doorbell", "-P", PASSWORDS["doorbell"], "-q", "1",
             "-t", "facegate/front_door/trigger", "-m", '{"source": "doorbell"}'],
            check=True, timeout=10,
        )  # fmt: skip
        _topic, payload, retained = door.wait_for(TOPICS.trigger)
        assert payload == b'{"source": "doorbell"}' and not retained
    finally:
        door.close()


@pytest.mark.parametrize(
    "topic",
    [
        TOPICS.image,
        TOPICS.lock_command,
        TOPICS.access,
        TOPICS.availability,
        "homeassistant/lock/facegate_front_door/door/config",
        "homeassistant/status",
    ],
)
def test_doorbell_may_publish_nothing_but_the_trigger(acl_broker, topic: str) -> None:
    watcher = Listener(acl_broker, ["facegate/#", "homeassistant/#"], **_login("homeassistant"))
    try:
        assert _puback(acl_broker, "doorbell", topic) == "Not authorized"
        assert _nothing_on(watcher, topic)
    finally:
        watcher.close()


def test_doorbell_reads_nothing(acl_broker) -> None:
    bell = Listener(acl_broker, ["facegate/#"], **_login("doorbell"))
    try:
        assert _puback(acl_broker, "facegate", TOPICS.access, b"{}") != "Not authorized"
        assert _nothing_on(bell, TOPICS.access)
    finally:
        bell.close()


def test_facegate_publishes_its_topics_and_reads_its_commands(acl_broker) -> None:
    ha = Listener(acl_broker, ["facegate/#", "homeassistant/#"], **_login("homeassistant"))
    door = Listener(
        acl_broker, [*TOPICS.subscriptions, "homeassistant/status"], **_login("facegate")
    )
    try:
        for topic in (TOPICS.availability, TOPICS.access, TOPICS.state, TOPICS.health):
            assert _puback(acl_broker, "facegate", topic, b"online") in (
                "Success",
                "No matching subscribers",
            )
            ha.wait_for(topic, b"online")
        discovery = "homeassistant/event/facegate_front_door/access/config"
        assert _puback(acl_broker, "facegate", discovery, b"{}") != "Not authorized"
        ha.wait_for(discovery)
        # Home Assistant opens the door, presses "Verify now" and announces itself.
        for topic, payload in (
            (TOPICS.lock_command, b"UNLOCK"),
            (TOPICS.trigger, b'{"source": "home_assistant"}'),
            ("homeassistant/status", b"online"),
        ):
            assert _puback(acl_broker, "homeassistant", topic, payload) != "Not authorized"
            door.wait_for(topic, payload)
    finally:
        ha.close()
        door.close()


@pytest.mark.parametrize("topic", [TOPICS.access, TOPICS.availability, TOPICS.image])
def test_home_assistant_cannot_speak_for_the_door(acl_broker, topic: str) -> None:
    assert _puback(acl_broker, "homeassistant", topic) == "Not authorized"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tls_listener(port: int, tls_files) -> str:
    """The commented TLS block of deploy/mosquitto/mosquitto.conf, enabled with test files."""
    text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    block = [
        line[1:]
        for line in text.splitlines()
        if line.startswith(("#listener 8883", "#cafile", "#certfile", "#keyfile", "#tls_version"))
    ]
    assert len(block) == 5, block
    paths = {"cafile": tls_files.ca, "certfile": tls_files.cert, "keyfile": tls_files.key}
    out = []
    for line in block:
        key = line.split()[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key in paths:
            line = f"{key} {paths[key]}"
        out.append(line)
    return "\n".join(out) + "\n"


def test_tls_with_password_connects_the_daemon_link(tmp_path: Path, broker_factory, tls_files):
    passwd = make_password_file(tmp_path / "passwd", PASSWORDS)
    tls_port = _free_port()
    broker = broker_factory(
        deploy_broker_config(passwd, MOSQUITTO_DIR / "acl", _tls_listener(tls_port, tls_files))
    )
    config = parse_config(
        {
            "mqtt": {
                "host": "localhost",
                "port": tls_port,
                "username": "facegate",
                "tls": True,
                "ca_file": str(tls_files.ca),
            }
        }
    )
    ha = Listener(broker, [TOPICS.availability], **_login("homeassistant"))
    link = MqttLink(
        config.mqtt, TOPICS, password=PASSWORDS["facegate"], on_message=lambda t, p: None
    )
    try:
        link.start()
        assert link.wait_connected(15), "the TLS link did not connect"
        ha.wait_for(TOPICS.availability, b"online")
    finally:
        link.stop()
        ha.close()
    # Over TLS, without credentials: refused; with them but an untrusted CA: no handshake.
    assert _connack("localhost", tls_port, None, None, ca=tls_files.ca) == "Not authorized"
    with pytest.raises(ssl.SSLError):
        _connack("localhost", tls_port, "facegate", PASSWORDS["facegate"], ca=tls_files.other_ca)


def test_make_passwords_script(tmp_path: Path, broker_factory) -> None:
    """The script writes a 0600 password file with three users and a credential that logs
    facegate in; it refuses to overwrite an existing password file."""
    passwd = tmp_path / "etc" / "facegate.passwd"
    credential = tmp_path / "etc" / "facegate" / "mqtt_password"
    script = MOSQUITTO_DIR / "make-passwords.sh"
    done = subprocess.run(
        ["sh", str(script), str(passwd), str(credential)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    users = [line.split(":")[0] for line in passwd.read_text().splitlines()]
    assert users == ["facegate", "doorbell", "homeassistant"]
    for path in (passwd, credential):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = credential.read_text().strip()
    assert len(secret) >= 16 and secret not in done.stdout
    broker = broker_factory(deploy_broker_config(passwd, MOSQUITTO_DIR / "acl"))
    assert _connack(broker.host, broker.port, "facegate", secret) == "Success"
    printed = dict(
        line.split(" password: ") for line in done.stdout.splitlines() if " password: " in line
    )
    assert _connack(broker.host, broker.port, "doorbell", printed["doorbell"]) == "Success"
    again = subprocess.run(
        ["sh", str(script), str(passwd), str(credential)], capture_output=True, timeout=60
    )
    assert again.returncode == 1 and credential.read_text().strip() == secret
    assert os.access(script, os.X_OK)
