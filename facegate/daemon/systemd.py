"""sd_notify without libsystemd: READY, WATCHDOG, STOPPING and STATUS over $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


class SystemdNotifier:
    """Talks to systemd when run as a ``Type=notify`` service; does nothing otherwise."""

    def __init__(self, address: str | None = None) -> None:
        self._address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None

    @property
    def enabled(self) -> bool:
        """True when a notify socket was given."""
        return bool(self._address)

    def notify(self, state: str) -> bool:
        """Send one state line (e.g. ``READY=1``); False when not under systemd or on error."""
        if not self._address:
            return False
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(state.encode())
            return True
        except OSError as err:
            logger.warning("sd_notify failed: %s", err)
            return False

    def ready(self, status: str = "") -> bool:
        """Tell systemd the service is up."""
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        """Feed the watchdog."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """Tell systemd a clean stop has begun."""
        return self.notify("STOPPING=1")
