"""Home Assistant discovery payloads."""

import json

import pytest

from facegate.daemon.discovery import EVENT_TYPES, discovery_messages
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics(base="facegate", door="front_door")


@pytest.fixture
def entities() -> dict[str, dict]:
    out = {}
    for topic, payload in discovery_messages(TOPICS, "homeassistant", capture_enabled=False):
        prefix, component, node, object_id, leaf = topic.split("/")
        assert (prefix, node, leaf) == ("homeassistant", "facegate_front_door", "config")
        out[f"{component}.{object_id}"] = json.loads(payload)
    return out


def test_one_device_with_every_required_entity(entities: dict[str, dict]) -> None:
    assert set(entities) == {
        "event.access",
        "lock.door",
        "sensor.last_user",
        "binary_sensor.lockout",
        "button.verify",
        "sensor.decision_latency",
        "image.last_capture",
    }
    ids = [e["unique_id"] for e in entities.values()]
    assert len(set(ids)) == len(ids)
    devices = {json.dumps(e["device"], sort_keys=True) for e in entities.values()}
    assert len(devices) == 1
    for entity in entities.values():
        assert entity["availability_topic"] == "facegate/front_door/availability"


def test_entity_wiring(entities: dict[str, dict]) -> None:
    assert entities["event.access"]["event_types"] == list(EVENT_TYPES)
    assert entities["event.access"]["state_topic"] == TOPICS.access
    lock = entities["lock.door"]
    assert lock["command_topic"] == TOPICS.lock_command
    assert lock["retain"] is False
    assert entities["button.verify"]["command_topic"] == TOPICS.trigger
    assert entities["button.verify"]["retain"] is False
    assert entities["sensor.decision_latency"]["entity_category"] == "diagnostic"


def test_image_entity_disabled_unless_captures_enabled(entities: dict[str, dict]) -> None:
    assert entities["image.last_capture"]["enabled_by_default"] is False
    enabled = {
        t: json.loads(p)
        for t, p in discovery_messages(TOPICS, "homeassistant", capture_enabled=True)
    }
    image = enabled["homeassistant/image/facegate_front_door/last_capture/config"]
    assert image["enabled_by_default"] is True


def test_subscriptions_are_only_the_door_inputs() -> None:
    assert TOPICS.subscriptions == (
        "facegate/front_door/trigger",
        "facegate/front_door/image",
        "facegate/front_door/lock/set",
        "facegate/registry-changed",  # site-wide: two levels, never a door's own topic
    )
