"""Writing decisions to the access log; those the registry refuses are kept and written later.

A locked, read-only or failing registry must not lose a decision: the row (with its outbox
events) is kept in memory, in order, and retried until the registry takes it. Meanwhile the
events are published directly (best effort), and only those the broker did not take stay
queued with the row, so nothing is sent twice. The first failure and the recovery are each
reported once as a health event. Held rows are also written to a spool file
(``DecisionSpool``) so that a restart picks them up, oldest first, before any new decision;
a row the registry took just before a crash is recognised by its decision id and not written
twice. The bound below keeps a registry that never comes back from eating memory.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facegate.daemon.spool import DecisionSpool
from facegate.daemon.stats import DaemonStats
from facegate.errors import StorageError
from facegate.storage.records import OutboxMessage
from facegate.storage.registry import Registry

logger = logging.getLogger(__name__)

# Decisions kept while the registry refuses writes; past this the oldest are dropped (counted).
MAX_PENDING = 10_000
# Seconds between retries while the registry refuses writes (each may wait the busy timeout).
RETRY_S = 2.0

SendFn = Callable[[OutboxMessage], bool]
HealthFn = Callable[[str, str], None]


@dataclass
class _Pending:
    """One decision not yet in the access log; ``announced`` once its events were sent,
    ``spooled`` once it is in the spool file."""

    fields: dict[str, Any]
    announced: bool = False
    spooled: bool = False


class DecisionRecorder:
    """Appends decisions to the access log in order, holding back what the registry refuses.

    ``send(message)`` publishes one event now and returns True when the broker took it;
    ``health(kind, message)`` reports ``registry_unavailable`` and ``registry_restored``.
    Used by the door worker thread only.
    """

    def __init__(
        self,
        registry: Registry,
        send: SendFn,
        stats: DaemonStats,
        health: HealthFn,
        spool: DecisionSpool | None = None,
    ) -> None:
        self._registry = registry
        self._send = send
        self._stats = stats
        self._health = health
        self._spool = spool
        self._pending: deque[_Pending] = deque()
        self._failing = False
        self._next_retry = 0.0
        held = spool.load() if spool is not None else []
        if held:
            # What of their events the broker did not take before the restart (all of them
            # when the kill came before the announcement) goes to the outbox with the row.
            self._pending.extend(_Pending(f, announced=True, spooled=True) for f in held)
            logger.warning(
                "%d decisions held before a restart are waiting for the registry", len(held)
            )

    @property
    def pending(self) -> int:
        """Decisions waiting for the registry."""
        return len(self._pending)

    def record(self, **fields: Any) -> bool:
        """Queue one ``Registry.log_access`` call behind any pending ones and write them all;
        True when everything is in the access log."""
        if len(self._pending) >= MAX_PENDING:
            lost = self._pending.popleft()
            self._stats.count("records_lost")
            logger.error(
                "registry unavailable too long: decision %s dropped from the retry queue",
                str(lost.fields.get("decision_id", "?"))[:8],
            )
        self._pending.append(_Pending(fields))
        return self.flush()

    def retry_due(self) -> bool:
        """True when decisions are pending and the next retry is due."""
        return bool(self._pending) and time.monotonic() >= self._next_retry

    def flush(self) -> bool:
        """Write pending decisions oldest first, stopping at the first refusal."""
        unspooled = False
        try:
            while self._pending:
                item = self._pending[0]
                try:
                    self._registry.log_access(**item.fields)
                except StorageError as err:
                    if item.announced and "constraint" in str(err):
                        # An earlier attempt committed after all (the decision id is unique).
                        logger.warning("decision %s was already recorded", self._id(item))
                        self._pending.popleft()
                        unspooled |= item.spooled
                        continue
                    self._failed(err)
                    return False
                self._pending.popleft()
                unspooled |= item.spooled
                if item.announced:
                    self._stats.count("records_recovered")
        finally:
            if unspooled:
                self._rewrite_spool()
        if self._failing:
            self._failing = False
            logger.warning("registry writable again: every held decision is recorded")
            self._health("registry_restored", "the access log is being written again")
        return True

    def _failed(self, err: StorageError) -> None:
        self._stats.count("registry_errors")
        self._next_retry = time.monotonic() + RETRY_S
        # On disk before anything is announced: a decision the door acted on survives a kill.
        self._append_spool()
        spooled_now = False
        for item in self._pending:
            if not item.announced:
                logger.error("could not record decision %s (kept): %s", self._id(item), err)
                events = item.fields.get("events", ())
                undelivered = tuple(m for m in events if not self._send(m))
                item.fields = {**item.fields, "events": undelivered}
                item.announced = True
                spooled_now |= item.spooled
        if spooled_now:
            # Only what the broker did not take is replayed after a restart (a kill before
            # this line sends the rest twice: at least once, as QoS 1 is).
            self._rewrite_spool()
        if not self._failing:
            self._failing = True
            self._health("registry_unavailable", f"cannot write the access log: {err}")

    def _append_spool(self) -> None:
        fresh = [item for item in self._pending if not item.spooled]
        if self._spool is None or not fresh:
            return
        try:
            self._spool.append(item.fields for item in fresh)
        except OSError as err:
            # Still held in memory and retried; only a restart before then would lose them.
            self._stats.count("spool_errors")
            logger.error("cannot write held decisions to %s: %s", self._spool.path, err)
            return
        for item in fresh:
            item.spooled = True

    def _rewrite_spool(self) -> None:
        """The spool file now holds the pending decisions that were in it."""
        if self._spool is None:
            return
        try:
            self._spool.replace([item.fields for item in self._pending if item.spooled])
        except OSError as err:
            # Rows left in the file that the registry already has are skipped on replay.
            self._stats.count("spool_errors")
            logger.error("cannot rewrite %s: %s", self._spool.path, err)

    @staticmethod
    def _id(item: _Pending) -> str:
        return str(item.fields.get("decision_id", "?"))[:8]
