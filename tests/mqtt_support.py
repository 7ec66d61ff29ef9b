"""Test helpers for MQTT: a plain paho subscriber that records what it receives."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion


class Listener:
    """A plain paho client recording (topic, payload, retain) triples of its subscriptions.

    ``wait_for`` hands out each message once, in arrival order per topic, without losing
    messages of other topics that arrived in between.
    """

    def __init__(self, broker, topics: list[str], client_id: str = "", **credentials: str) -> None:
        self.messages: queue.Queue = queue.Queue()
        self.pending: list[tuple[str, bytes, bool]] = []
        # A client id makes a persistent session: what arrives while it is away is kept.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not client_id
        )
        if credentials:
            self.client.username_pw_set(credentials["username"], credentials.get("password"))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect(broker.host, broker.port)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def wait_for(self, topic: str, payload: bytes | None = None, timeout: float = 10.0):
        """The next message on ``topic`` (with ``payload`` if given); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, got in enumerate(self.pending):
                if got[0] == topic and (payload is None or got[1] == payload):
                    del self.pending[i]
                    return got
            if time.monotonic() >= deadline:
                break
            try:
                self.pending.append(self.messages.get(timeout=0.1))
            except queue.Empty:
                continue
        pytest.fail(f"nothing on {topic} ({payload!r}) within {timeout}s")

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()
