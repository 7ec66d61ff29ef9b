"""The door's MQTT connection (paho-mqtt v2): the only module that imports paho.

Used as paho is designed: ``connect_async`` + ``loop_start`` with paho's own reconnect backoff;
the will (``offline``, retained) is set before connecting and ``online`` is published on every
connect; subscriptions and discovery are (re)made in ``on_connect`` so a broker restart
restores them; ``offline`` is published by hand before a clean stop, since a clean disconnect
suppresses the will.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from facegate.config import MqttConfig
from facegate.daemon.discovery import discovery_messages
from facegate.daemon.topics import DoorTopics

logger = logging.getLogger(__name__)

HA_STATUS_SUFFIX = "status"
ONLINE = b"online"
OFFLINE = b"offline"

MessageHandler = Callable[[str, bytes], None]


class MqttLink:
    """One door's broker connection: availability, discovery, subscriptions, publishing.

    ``on_message(topic, payload)`` is called on paho's network thread for messages on the
    door's subscribed topics, so it must only enqueue; ``on_bad_input(kind)`` counts what is
    dropped here (``oversize_payload``, ``bad_ha_status``). ``on_connected()`` runs after each
    (re)connect, once subscriptions and availability are in place.
    """

    def __init__(
        self,
        config: MqttConfig,
        topics: DoorTopics,
        *,
        password: str,
        on_message: MessageHandler,
        on_connected: Callable[[], None] | None = None,
        capture_enabled: bool = False,
        client_id: str = "",
        on_bad_input: Callable[[str], None] | None = None,
    ) -> None:
        self._config = config
        self._topics = topics
        self._password = password
        self._on_message = on_message
        self._on_connected = on_connected
        self._capture_enabled = capture_enabled
        self._client_id = client_id or config.client_id or f"facegate-{topics.door}"
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._subscribe_mid: int | None = None
        self._stopping = False
        self.dropped_oversize = 0
        self._on_bad_input = on_bad_input or (lambda kind: None)

    @property
    def ha_status_topic(self) -> str:
        """Home Assistant's birth/last-will topic."""
        return f"{self._config.discovery_prefix}/{HA_STATUS_SUFFIX}"

    @property
    def connected(self) -> bool:
        """True while the broker session is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` seconds pass."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Configure the client and start connecting in the background (never blocks)."""
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
        )
        if self._config.username:
            client.username_pw_set(self._config.username, self._password or None)
        if self._config.tls:
            client.tls_set(
                ca_certs=str(self._config.ca_file) if self._config.ca_file else None,
                certfile=str(self._config.cert_file) if self._config.cert_file else None,
                keyfile=str(self._config.key_file) if self._config.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(self._config.tls_insecure)
        client.will_set(self._topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(
            min_delay=max(1, int(self._config.reconnect_min_s)),
            max_delay=max(1, int(self._config.reconnect_max_s)),
        )
        self._stopping = False
        client.on_connect = self._handle_connect
        client.on_subscribe = self._handle_subscribe
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client
        logger.info(
            "connecting to MQTT broker %s:%d as %s",
            self._config.host,
            self._config.port,
            self._client_id,
        )
        client.connect_async(self._config.host, self._config.port, self._config.keepalive_s)
        client.loop_start()

    def stop(self, timeout: float = 3.0) -> None:
        """Publish ``offline`` (a clean disconnect suppresses the will), then disconnect."""
        client = self._client
        if client is None:
            return
        if self.connected:
            info = client.publish(self._topics.availability, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                logger.warning("could not publish offline before stopping")
        self._stopping = True
        client.disconnect()
        client.loop_stop()
        self._connected.clear()
        self._client = None

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5.0,
    ) -> bool:
        """Publish and wait for the broker's acknowledgement (QoS 1); False when not delivered."""
        client = self._client
        if client is None or not self.connected:
            return False
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return False
            if qos == 0:
                return True
            info.wait_for_publish(timeout)
            return info.is_published()
        except (RuntimeError, ValueError) as err:
            logger.warning("publish to %s failed: %s", topic, err)
            return False

    def publish_discovery(self) -> None:
        """(Re)publish the retained Home Assistant discovery configs."""
        if not self._config.discovery:
            return
        for topic, payload in discovery_messages(
            self._topics, self._config.discovery_prefix, capture_enabled=self._capture_enabled
        ):
            self.publish(topic, payload, qos=1, retain=True)

    # paho callbacks (network thread)

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            # Wrong credentials or ACL: a human must act, but paho keeps retrying.
            logger.error("MQTT broker refused the connection: %s", reason_code)
            return
        logger.info("connected to MQTT broker")
        topics = [(t, 1) for t in (*self._topics.subscriptions, self.ha_status_topic)]
        _, self._subscribe_mid = client.subscribe(topics)

    def _handle_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # Only once the broker has confirmed the subscriptions is the door "online": a trigger
        # published after that cannot be missed.
        if mid != self._subscribe_mid:
            return
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            logger.error("MQTT broker refused %d subscription(s): check the ACL", len(refused))
        client.publish(self._topics.availability, ONLINE, qos=1, retain=True)
        self._connected.set()
        # Discovery and the outbox wait on acknowledgements, which arrive on this very
        # thread: hand them to a short-lived worker.
        threading.Thread(target=self._after_connect, name="mqtt-connected", daemon=True).start()

    def _after_connect(self) -> None:
        self.publish_discovery()
        if self._on_connected is not None:
            self._on_connected()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stopping:
            logger.warning("disconnected from MQTT broker (%s); paho will reconnect", reason_code)

    def _handle_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        if len(payload) > self._config.max_payload_bytes:
            self.dropped_oversize += 1
            self._on_bad_input("oversize_payload")
            logger.warning(
                "dropped %d-byte message on %s: over the limit", len(payload), message.topic
            )
            return
        if message.topic == self.ha_status_topic:
            if payload.strip() == ONLINE:
                logger.info("Home Assistant came online: republishing discovery")
                threading.Thread(target=self.publish_discovery, daemon=True).start()
            elif payload.strip() != OFFLINE:
                self._on_bad_input("bad_ha_status")
                logger.warning("ignored a Home Assistant status that is neither online nor offline")
            return
        try:
            self._on_message(message.topic, payload)
        except Exception:  # the network thread must survive any handler bug
            logger.exception("message handler failed for %s", message.topic)
