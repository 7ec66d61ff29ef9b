"""Trigger payload parsing: what a doorbell sends is accepted, junk is refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facegate.daemon.triggers import BadPayloadError, parse_trigger


@pytest.mark.parametrize(
    ("payload", "source"),
    [
        (b"", ""),
        (b"  \n", ""),
        (b"ON", "ON"),
        (b"pressed", "pressed"),
        (b'{"source": "doorbell"}', "doorbell"),
        (b'{"source": "doorbell", "extra": [1, 2]}', "doorbell"),
        (b"{}", ""),
        ('{"source": "porte d\'entrée"}'.encode(), "porte d'entrée"),
        (b'{"source": "a\\u0000b"}', "ab"),
    ],
)
def test_accepted(payload: bytes, source: str) -> None:
    trigger = parse_trigger(payload)
    assert trigger.kind == "mqtt"
    assert trigger.source == source


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe", b"{not json", b"[1, 2]", b'"text"', b'{"source": 5}', b"x" * 65, b"a;b"],
)
def test_refused(payload: bytes) -> None:
    with pytest.raises(BadPayloadError):
        parse_trigger(payload)


@given(st.binary(max_size=256))
def test_any_bytes_parse_or_refuse_cleanly(payload: bytes) -> None:
    try:
        trigger = parse_trigger(payload)
    except BadPayloadError:
        return
    assert len(trigger.source) <= 64
