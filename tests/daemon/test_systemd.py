"""sd_notify over a real Unix datagram socket."""

import socket
from pathlib import Path

from facegate.daemon.systemd import SystemdNotifier


def test_notifications_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        notifier = SystemdNotifier(str(path))
        assert notifier.enabled
        assert notifier.ready("serving")
        assert server.recv(100) == b"READY=1\nSTATUS=serving"
        assert notifier.watchdog()
        assert server.recv(100) == b"WATCHDOG=1"


def test_without_systemd_it_is_silent() -> None:
    notifier = SystemdNotifier("")
    assert not notifier.enabled
    assert not notifier.ready()


def test_dead_socket_is_reported_not_raised(tmp_path: Path) -> None:
    assert not SystemdNotifier(str(tmp_path / "missing.sock")).ready()
