"""A one-shot broker check for ``facegate doctor`` (paho-mqtt v2; the daemon's link is
``mqtt_link``).

It connects with the door's credentials and TLS settings but its own client id (so the running
daemon is not kicked off), sets no will and never touches the availability topic. MQTT 5 is
used because a broker then answers a publish or subscription its ACL refuses with "Not
authorized"; over MQTT 3.1.1 a refused publish is acknowledged as if it had been delivered.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from facegate.config import MqttConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerProbe:
    """What the broker answered: ``stage`` is where the probe stopped (``connect``,
    ``publish``, ``subscribe`` or ``done``), ``ok`` whether every step was accepted."""

    ok: bool
    stage: str
    detail: str
    refused_topics: tuple[str, ...] = ()


class _Answers:
    """Acknowledgements collected on paho's network thread."""

    def __init__(self) -> None:
        self.connack = threading.Event()
        self.connect_code: object = None
        self.acks: dict[int, object] = {}
        self.ack_event = threading.Condition()


def make_client(config: MqttConfig, password: str, client_id: str) -> mqtt.Client:
    """A paho v2 MQTT 5 client with the door's credentials and TLS settings, not connected."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    if config.username:
        client.username_pw_set(config.username, password or None)
    if config.tls:
        client.tls_set(
            ca_certs=str(config.ca_file) if config.ca_file else None,
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(config.tls_insecure)
    return client


def _wait_ack(answers: _Answers, mid: int, deadline_s: float) -> object | None:
    with answers.ack_event:
        answers.ack_event.wait_for(lambda: mid in answers.acks, timeout=deadline_s)
        return answers.acks.get(mid)


def probe_broker(
    config: MqttConfig,
    password: str,
    *,
    publish_topic: str,
    payload: bytes,
    subscribe_topics: Sequence[str] = (),
    timeout_s: float = 5.0,
    client_id: str = "",
) -> BrokerProbe:
    """Connect, publish ``payload`` to ``publish_topic`` at QoS 1 and subscribe to
    ``subscribe_topics``, each step waiting at most ``timeout_s`` seconds for the broker."""
    client_id = client_id or f"facegate-doctor-{os.getpid()}"
    answers = _Answers()
    client = make_client(config, password, client_id)
    client.connect_timeout = timeout_s

    def on_connect(_c, _u, _flags, reason_code, _props) -> None:
        answers.connect_code = reason_code
        answers.connack.set()

    def on_ack(mid: int, code: object) -> None:
        with answers.ack_event:
            answers.acks[mid] = code
            answers.ack_event.notify_all()

    client.on_connect = on_connect
    client.on_publish = lambda _c, _u, mid, reason_code, _p: on_ack(mid, reason_code)
    client.on_subscribe = lambda _c, _u, mid, codes, _p: on_ack(mid, codes)
    where = f"{config.host}:{config.port}"
    try:
        client.connect(config.host, config.port, keepalive=max(5, int(timeout_s) + 5))
    except ssl.SSLError as err:
        return BrokerProbe(False, "connect", f"{where}: TLS handshake failed: {err.reason or err}")
    except OSError as err:
        return BrokerProbe(False, "connect", f"{where}: {err.strerror or err}")
    client.loop_start()
    try:
        return _exchange(
            client, answers, where, publish_topic, payload, subscribe_topics, timeout_s
        )
    finally:
        client.disconnect()
        client.loop_stop()


def _exchange(
    client: mqtt.Client,
    answers: _Answers,
    where: str,
    publish_topic: str,
    payload: bytes,
    subscribe_topics: Sequence[str],
    timeout_s: float,
) -> BrokerProbe:
    if not answers.connack.wait(timeout_s):
        return BrokerProbe(False, "connect", f"{where}: no answer to CONNECT within {timeout_s} s")
    code = answers.connect_code
    if getattr(code, "is_failure", True):
        return BrokerProbe(False, "connect", f"{where}: connection refused: {code}")
    info = client.publish(publish_topic, payload, qos=1, retain=False)
    puback = _wait_ack(answers, info.mid, timeout_s)
    if puback is None:
        return BrokerProbe(False, "publish", f"no PUBACK for {publish_topic} within {timeout_s} s")
    if getattr(puback, "is_failure", False):
        return BrokerProbe(
            False, "publish", f"publish to {publish_topic} refused: {puback}", (publish_topic,)
        )
    refused: list[str] = []
    for topic in subscribe_topics:
        _rc, mid = client.subscribe(topic, qos=1)
        codes = _wait_ack(answers, mid, timeout_s)
        if codes is None:
            return BrokerProbe(False, "subscribe", f"no SUBACK for {topic} within {timeout_s} s")
        if any(getattr(c, "is_failure", False) for c in codes):  # type: ignore[union-attr]
            refused.append(topic)
    if refused:
        return BrokerProbe(
            False, "subscribe", f"subscription refused: {', '.join(refused)}", tuple(refused)
        )
    return BrokerProbe(True, "done", f"{where}: connected, published and subscribed")
