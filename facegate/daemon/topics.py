"""The MQTT topic layout of one door (pure; no paho here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DoorTopics:
    """Every topic a door uses, derived from the base topic and the door id."""

    base: str
    door: str

    def _t(self, leaf: str) -> str:
        return f"{self.base}/{self.door}/{leaf}"

    @property
    def availability(self) -> str:
        """``online``/``offline``, retained; ``offline`` is also the will."""
        return self._t("availability")

    @property
    def access(self) -> str:
        """One JSON object per decision, never retained."""
        return self._t("access")

    @property
    def last_access(self) -> str:
        """The latest decision as state for sensors, retained."""
        return self._t("last_access")

    @property
    def trigger(self) -> str:
        """Subscribed: a message here (e.g. a doorbell press) starts a verification burst."""
        return self._t("trigger")

    @property
    def image(self) -> str:
        """Subscribed: a JPEG or PNG published here is verified as it is."""
        return self._t("image")

    @property
    def capture(self) -> str:
        """The last decision's frame as JPEG, only when enabled, never retained."""
        return self._t("capture")

    @property
    def lock_command(self) -> str:
        """Subscribed: Home Assistant's lock entity sends UNLOCK/LOCK here."""
        return self._t("lock/set")

    @property
    def lock_state(self) -> str:
        """``LOCKED``/``UNLOCKED``, retained."""
        return self._t("lock/state")

    @property
    def lockout(self) -> str:
        """``ON`` while verification is suspended, else ``OFF``; retained."""
        return self._t("lockout")

    @property
    def state(self) -> str:
        """The periodic heartbeat with counters, retained."""
        return self._t("state")

    @property
    def health(self) -> str:
        """Health events (camera lost, job failed), not retained."""
        return self._t("health")

    @property
    def registry_changed(self) -> str:
        """Site-wide, subscribed: the CLI's notice that it changed the registry (users,
        galleries, models), so every door reloads now instead of at its next poll. Two levels
        deep, it cannot clash with a door's own topics."""
        return f"{self.base}/registry-changed"

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The only topics the door acts on."""
        return (self.trigger, self.image, self.lock_command, self.registry_changed)
