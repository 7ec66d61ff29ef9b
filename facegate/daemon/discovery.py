"""Home Assistant MQTT discovery as data: pure functions returning (topic, payload) pairs.

One HA device per door, every entity with a stable ``unique_id``, the shared device block and
the door's availability topic. The daemon publishes these retained on connect and again when
``homeassistant/status`` says ``online``. Commands (lock, button) are never retained.
"""

from __future__ import annotations

import json
from typing import Any

from facegate import __version__
from facegate.daemon.topics import DoorTopics

EVENT_TYPES = ("granted", "denied", "locked_out")
LOCK_PAYLOAD = "LOCK"
UNLOCK_PAYLOAD = "UNLOCK"
STATE_LOCKED = "LOCKED"
STATE_UNLOCKED = "UNLOCKED"


def _node_id(door: str) -> str:
    return f"facegate_{door}"


def device_block(door: str) -> dict[str, Any]:
    """The HA device all of a door's entities belong to."""
    return {
        "identifiers": [_node_id(door)],
        "name": f"facegate {door.replace('_', ' ')}",
        "manufacturer": "facegate",
        "model": "Face-verification door controller",
        "sw_version": __version__,
    }


def discovery_messages(
    topics: DoorTopics, discovery_prefix: str, *, capture_enabled: bool
) -> list[tuple[str, str]]:
    """Discovery config (topic, JSON payload) for every entity of one door.

    ``capture_enabled`` decides whether the last-capture image entity is enabled by default:
    captures are biometric data, so the entity exists but stays disabled unless configured.
    """
    node = _node_id(topics.door)
    common: dict[str, Any] = {
        "device": device_block(topics.door),
        "origin": {"name": "facegate", "sw_version": __version__},
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        (
            "event",
            "access",
            {
                "name": "Access",
                "state_topic": topics.access,
                "event_types": list(EVENT_TYPES),
                "icon": "mdi:door",
            },
        ),
        (
            "lock",
            "door",
            {
                "name": "Door",
                "command_topic": topics.lock_command,
                "state_topic": topics.lock_state,
                "payload_lock": LOCK_PAYLOAD,
                "payload_unlock": UNLOCK_PAYLOAD,
                "state_locked": STATE_LOCKED,
                "state_unlocked": STATE_UNLOCKED,
                "retain": False,
                "optimistic": False,
            },
        ),
        (
            "sensor",
            "last_user",
            {
                "name": "Last user",
                "state_topic": topics.last_access,
                "value_template": "{{ value_json.user if value_json.user else 'unknown' }}",
                "json_attributes_topic": topics.last_access,
                "icon": "mdi:account-lock",
            },
        ),
        (
            "binary_sensor",
            "lockout",
            {
                "name": "Lockout",
                "state_topic": topics.lockout,
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "problem",
            },
        ),
        (
            "button",
            "verify",
            {
                "name": "Verify now",
                "command_topic": topics.trigger,
                "payload_press": json.dumps({"source": "home_assistant"}),
                "retain": False,
                "icon": "mdi:face-recognition",
            },
        ),
        (
            "sensor",
            "decision_latency",
            {
                "name": "Decision latency",
                "state_topic": topics.last_access,
                "value_template": "{{ value_json.latency_ms }}",
                "unit_of_measurement": "ms",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:timer-outline",
            },
        ),
        (
            "image",
            "last_capture",
            {
                "name": "Last capture",
                "image_topic": topics.capture,
                "content_type": "image/jpeg",
                "enabled_by_default": capture_enabled,
            },
        ),
    ]
    messages = []
    for component, object_id, payload in entities:
        body = {**payload, **common, "unique_id": f"{node}_{object_id}"}
        topic = f"{discovery_prefix}/{component}/{node}/{object_id}/config"
        messages.append((topic, json.dumps(body, sort_keys=True)))
    return messages
