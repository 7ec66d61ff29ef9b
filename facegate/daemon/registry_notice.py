"""Telling the doors that the registry changed: one MQTT message from a CLI command.

Doors also poll the registry every few seconds, so the notice only makes a change (an
enrollment, a disabled user, a promoted model) take effect at once: a broker that is down or
refuses it costs a warning, never the command. The message carries no data (doors re-read the
registry), is QoS 1 and never retained: a door that was offline reloads at its next poll.
"""

from __future__ import annotations

import json
import logging
import os
import time

from facegate.config import FacegateConfig, mqtt_password
from facegate.daemon.topics import DoorTopics
from facegate.errors import FacegateError

logger = logging.getLogger(__name__)

NOTICE_TIMEOUT_S = 2.0


def announce_registry_change(config: FacegateConfig, timeout_s: float = NOTICE_TIMEOUT_S) -> bool:
    """Publish the registry-changed notice on the configured broker; True when it took it."""
    from facegate.daemon.mqtt_probe import make_client

    topic = DoorTopics(config.mqtt.base_topic, config.door).registry_changed
    payload = json.dumps({"time": time.time(), "pid": os.getpid()}).encode()
    try:
        client = make_client(config.mqtt, mqtt_password(config.mqtt), f"facegate-cli-{os.getpid()}")
        client.connect_timeout = timeout_s
        client.connect(config.mqtt.host, config.mqtt.port, keepalive=10)
    except (OSError, ValueError, FacegateError) as err:
        logger.warning("could not tell the doors about the change (%s); they poll for it", err)
        return False
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=False)
        info.wait_for_publish(timeout_s)
        delivered = info.is_published()
    except (OSError, RuntimeError, ValueError) as err:
        logger.warning("could not tell the doors about the change (%s); they poll for it", err)
        delivered = False
    finally:
        client.disconnect()
        client.loop_stop()
    if not delivered:
        logger.warning("the broker did not take the change notice; doors pick it up by polling")
    return delivered
