"""The door's MQTT link against a real broker on a free loopback port."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import textwrap
import time

from mqtt_support import Listener

from facegate.config import MqttConfig
from facegate.daemon.mqtt_link import MqttLink
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics(base="facegate", door="front_door")


def make_link(broker, received: queue.Queue, **overrides) -> MqttLink:
    config = MqttConfig(host=broker.host, port=broker.port, reconnect_max_s=1.0, **overrides)
    return MqttLink(config, TOPICS, password="", on_message=lambda t, p: received.put((t, p)))


def test_availability_discovery_and_clean_stop(mqtt_broker) -> None:
    received: queue.Queue = queue.Queue()
    link = make_link(mqtt_broker, received)
    link.start()
    assert link.wait_connected(10)
    time.sleep(0.5)
    late = Listener(mqtt_broker, [TOPICS.availability, "homeassistant/#"])
    _, _, retained = late.wait_for(TOPICS.availability, b"online")
    assert retained
    _, payload, retained = late.wait_for("homeassistant/lock/facegate_front_door/door/config")
    assert retained and json.loads(payload)["command_topic"] == TOPICS.lock_command
    link.stop()
    assert late.wait_for(TOPICS.availability, b"offline")
    late.close()


def test_messages_on_door_topics_only_and_oversize_dropped(mqtt_broker) -> None:
    received: queue.Queue = queue.Queue()
    link = make_link(mqtt_broker, received, max_payload_bytes=100)
    link.start()
    assert link.wait_connected(10)
    time.sleep(0.3)
    peer = Listener(mqtt_broker, [])
    peer.publish("facegate/other_door/trigger", "{}")
    peer.publish(TOPICS.image, b"x" * 101)
    peer.publish(TOPICS.trigger, '{"source": "doorbell"}')
    assert received.get(timeout=5) == (TOPICS.trigger, b'{"source": "doorbell"}')
    assert received.empty()
    assert link.dropped_oversize == 1
    peer.close()
    link.stop()


def test_home_assistant_restart_republishes_discovery(mqtt_broker) -> None:
    link = make_link(mqtt_broker, queue.Queue())
    link.start()
    assert link.wait_connected(10)
    time.sleep(0.5)
    peer = Listener(mqtt_broker, [])
    watcher = Listener(mqtt_broker, ["homeassistant/event/#"])
    watcher.wait_for("homeassistant/event/facegate_front_door/access/config")  # retained copy
    peer.publish("homeassistant/status", "online")
    _, _, retained = watcher.wait_for("homeassistant/event/facegate_front_door/access/config")
    assert not retained  # a live republish, not the broker's retained copy
    for client in (peer, watcher):
        client.close()
    link.stop()


def test_broker_restart_restores_subscriptions(mqtt_broker) -> None:
    received: queue.Queue = queue.Queue()
    link = make_link(mqtt_broker, received)
    link.start()
    assert link.wait_connected(10)
    mqtt_broker.stop()
    deadline = time.monotonic() + 10
    while link.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not link.connected
    assert not link.publish(TOPICS.access, "{}")
    mqtt_broker.start()
    assert link.wait_connected(15)
    time.sleep(0.5)
    peer = Listener(mqtt_broker, [TOPICS.availability])
    assert peer.wait_for(TOPICS.availability, b"online")[2]
    peer.publish(TOPICS.trigger, "{}")
    assert received.get(timeout=5) == (TOPICS.trigger, b"{}")
    peer.close()
    link.stop()


def test_sigkill_leaves_offline_through_the_will(mqtt_broker) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from facegate.config import MqttConfig
        from facegate.daemon.mqtt_link import MqttLink
        from facegate.daemon.topics import DoorTopics
        link = MqttLink(MqttConfig(host="{mqtt_broker.host}", port={mqtt_broker.port}),
                        DoorTopics("facegate", "front_door"), password="",
                        on_message=lambda t, p: None)
        link.start()
        assert link.wait_connected(10)
        print("up", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        watcher = Listener(mqtt_broker, [TOPICS.availability])
        watcher.wait_for(TOPICS.availability, b"online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        watcher.wait_for(TOPICS.availability, b"offline")
        watcher.close()
        late = Listener(mqtt_broker, [TOPICS.availability])
        assert late.wait_for(TOPICS.availability)[1:] == (b"offline", True)
        late.close()
    finally:
        proc.kill()
