"""Parsing what arrives on the trigger topic (pure): tolerant of doorbells, strict on junk."""

from __future__ import annotations

import json
import re

from facegate.daemon.events import Trigger
from facegate.errors import FacegateError

_PLAIN = re.compile(r"^[\w .:@/-]{1,64}$")
MAX_SOURCE = 64


class BadPayloadError(FacegateError):
    """A message on a door topic that cannot be understood; it is logged, counted, ignored."""


def parse_trigger(payload: bytes) -> Trigger:
    """Read a trigger message.

    Accepted: an empty payload; a short plain word as doorbells send ("ON", "pressed"); a JSON
    object whose optional ``source`` is a string. Unknown JSON keys are ignored. Anything else
    raises BadPayloadError.
    """
    text = payload.strip()
    if not text:
        return Trigger(kind="mqtt")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadPayloadError("trigger payload is not UTF-8") from err
    if not decoded.startswith(("{", "[", '"')) and _PLAIN.match(decoded):
        return Trigger(kind="mqtt", source=decoded)
    try:
        data = json.loads(decoded)
    except ValueError as err:
        raise BadPayloadError("trigger payload is neither a word nor valid JSON") from err
    if not isinstance(data, dict):
        raise BadPayloadError("trigger JSON must be an object")
    source = data.get("source", "")
    if not isinstance(source, str):
        raise BadPayloadError("trigger 'source' must be a string")
    source = "".join(ch for ch in source if ch.isprintable())[:MAX_SOURCE]
    return Trigger(kind="mqtt", source=source)
