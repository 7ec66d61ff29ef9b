"""deploy/homeassistant matches the discovery facegate publishes: entity ids as Home Assistant
derives them, topics, payloads and event types."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import DEPLOY

from facegate.daemon.discovery import EVENT_TYPES, UNLOCK_PAYLOAD, discovery_messages
from facegate.daemon.topics import DoorTopics
from facegate.daemon.triggers import parse_trigger

HA = DEPLOY / "homeassistant"
TOPICS = DoorTopics("facegate", "front_door")
ENTITY_REF = re.compile(r"\b(?:event|lock|sensor|binary_sensor|button|image)\.facegate_\w+")


def ha_slugify(text: str) -> str:
    """Home Assistant's slugify for ASCII names: lower case, runs of other characters -> '_'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def discovered_entity_ids() -> dict[str, dict[str, Any]]:
    """entity_id -> discovery payload, as HA names MQTT entities (has_entity_name: device
    name + entity name) for door front_door."""
    ids = {}
    for topic, payload in discovery_messages(TOPICS, "homeassistant", capture_enabled=False):
        body = json.loads(payload)
        component = topic.split("/")[1]
        ids[f"{component}.{ha_slugify(body['device']['name'] + ' ' + body['name'])}"] = body
    return ids


class _SecretLoader(yaml.SafeLoader):
    """Reads ESPHome YAML: ``!secret name`` becomes the text ``<secret name>``."""


_SecretLoader.add_constructor("!secret", lambda loader, node: f"<secret {node.value}>")


def _load(name: str) -> Any:
    return yaml.load((HA / name).read_text(), Loader=_SecretLoader)  # a SafeLoader subclass


def test_entity_ids_are_the_ones_home_assistant_derives() -> None:
    ids = discovered_entity_ids()
    assert set(ids) == {
        "event.facegate_front_door_access",
        "lock.facegate_front_door_door",
        "sensor.facegate_front_door_last_user",
        "binary_sensor.facegate_front_door_lockout",
        "button.facegate_front_door_verify_now",
        "sensor.facegate_front_door_decision_latency",
        "image.facegate_front_door_last_capture",
    }


@pytest.mark.parametrize(
    "name", ["automations.yaml", "dashboard-card.yaml", "README.md", "doorbell.esphome.yaml"]
)
def test_files_name_only_discovered_entities(name: str) -> None:
    referenced = set(ENTITY_REF.findall((HA / name).read_text()))
    assert referenced <= set(discovered_entity_ids()), referenced - set(discovered_entity_ids())


def test_readme_lists_every_entity() -> None:
    assert set(ENTITY_REF.findall((HA / "README.md").read_text())) == set(discovered_entity_ids())


def _automations() -> dict[str, dict[str, Any]]:
    items = _load("automations.yaml")
    assert isinstance(items, list)
    by_id = {item["id"]: item for item in items}
    assert len(by_id) == len(items)
    for item in items:
        assert {"id", "alias", "triggers", "actions"} <= set(item), item
    return by_id


def test_denied_notification_follows_the_event_entity() -> None:
    auto = _automations()["facegate_front_door_denied"]
    (trigger,) = auto["triggers"]
    assert trigger["entity_id"] == "event.facegate_front_door_access"
    (condition,) = auto["conditions"]
    assert condition["attribute"] == "event_type" and condition["state"] == "denied"
    assert "denied" in EVENT_TYPES
    text = json.dumps(auto["actions"])
    assert "'reason'" in text and "FACEGATE_OPEN_FRONT_DOOR" in text


def test_lockout_notification() -> None:
    auto = _automations()["facegate_front_door_lockout"]
    (trigger,) = auto["triggers"]
    assert trigger["entity_id"] == "binary_sensor.facegate_front_door_lockout"
    # The binary sensor's ON payload is HA state "on".
    body = discovered_entity_ids()["binary_sensor.facegate_front_door_lockout"]
    assert body["payload_on"] == "ON" and trigger["to"] == "on"


def test_open_the_door_unlocks_the_lock_entity() -> None:
    auto = _automations()["facegate_front_door_open_from_notification"]
    (action,) = auto["actions"]
    assert action["action"] == "lock.unlock"
    assert action["target"]["entity_id"] == "lock.facegate_front_door_door"
    lock = discovered_entity_ids()["lock.facegate_front_door_door"]
    assert lock["command_topic"] == TOPICS.lock_command and lock["payload_unlock"] == UNLOCK_PAYLOAD
    assert lock["retain"] is False


def test_doorbell_automation_publishes_a_valid_trigger() -> None:
    auto = _automations()["facegate_front_door_doorbell"]
    (action,) = auto["actions"]
    assert action["action"] == "mqtt.publish"
    data = action["data"]
    assert data["topic"] == TOPICS.trigger and data["retain"] is False
    assert parse_trigger(data["payload"].encode()).source == "doorbell"


def test_dashboard_card() -> None:
    card = _load("dashboard-card.yaml")
    assert card["type"] == "vertical-stack"
    entities = [e["entity"] for e in card["cards"][0]["entities"]]
    assert "lock.facegate_front_door_door" in entities
    assert card["cards"][2]["entity"] == "image.facegate_front_door_last_capture"


def test_esphome_doorbell_speaks_only_the_trigger() -> None:
    """The doorbell logs in as the ACL's doorbell and publishes nothing but the trigger."""
    config = _load("doorbell.esphome.yaml")
    mqtt = config["mqtt"]
    assert mqtt["username"] == "doorbell" and mqtt["password"].startswith("<secret")
    assert mqtt["discovery"] is False and mqtt["discover_ip"] is False
    for silent in ("birth_message", "will_message", "shutdown_message", "log_topic"):
        assert silent in mqtt and mqtt[silent] is None, silent
    (button,) = config["binary_sensor"]
    assert button["internal"] is True  # no state topic of its own
    (publish,) = button["on_press"]
    msg = publish["mqtt.publish"]
    assert msg["topic"] == TOPICS.trigger and msg["retain"] is False
    assert parse_trigger(msg["payload"].encode()).source == "doorbell"


def test_discovery_needs_no_yaml_in_the_guide() -> None:
    text = (HA / "README.md").read_text()
    assert "**without any YAML**" in text
    assert "homeassistant/status" in text
    assert Path(HA / "README.md").is_file()
