"""Delivering the registry's outbox to the broker, in order, once connected.

Decisions are written to the outbox in the same transaction as their access-log row, so an
event exists before anyone tries to publish it; this loop publishes the oldest first and
removes each only after the broker acknowledged it (QoS 1). While the broker is away nothing
is lost: the queue simply grows and drains when the connection returns.
"""

from __future__ import annotations

import logging
import threading

from facegate.daemon.mqtt_link import MqttLink
from facegate.errors import StorageError
from facegate.storage.registry import Registry

logger = logging.getLogger(__name__)


class OutboxPublisher:
    """A background loop draining the outbox through the MQTT link."""

    def __init__(self, registry: Registry, link: MqttLink, batch: int = 50) -> None:
        self._registry = registry
        self._link = link
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0

    def wake(self) -> None:
        """Ask for a delivery round now (after a new event, or on reconnect)."""
        self._wake.set()

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current round (what is left stays queued for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> int:
        """Publish queued events in order until empty or the broker stops acknowledging."""
        sent = 0
        while self._link.connected and not self._stop.is_set():
            try:
                events = self._registry.peek_outbox(self._batch)
            except StorageError as err:
                logger.warning("cannot read the outbox: %s", err)
                return sent
            if not events:
                return sent
            for event in events:
                if not self._link.publish(event.topic, event.payload, event.qos, event.retain):
                    # Keep order: stop at the first undelivered event and retry it later.
                    self._registry.mark_outbox_attempt([event.id])
                    return sent
                self._registry.ack_outbox([event.id])
                sent += 1
                self.delivered += 1
        return sent

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain()
            except StorageError as err:
                logger.warning("outbox delivery failed: %s", err)
