"""Heartbeat counters."""

import json
import threading

from facegate.daemon.stats import DaemonStats


def test_snapshot_counts_and_percentiles() -> None:
    stats = DaemonStats()
    assert stats.snapshot()["latency_ms"]["p50"] is None
    for ms in range(1, 101):
        stats.decision("granted" if ms % 2 else "unknown_face", float(ms))
    stats.bad_input("malformed_trigger")
    stats.count("frames", 5)
    snap = stats.snapshot(outbox_depth=3)
    assert snap["decisions"] == {"granted": 50, "unknown_face": 50}
    assert snap["bad_input"] == {"malformed_trigger": 1}
    assert snap["counts"] == {"frames": 5}
    assert snap["latency_ms"]["p50"] == 50.5
    assert snap["latency_ms"]["max"] == 100.0
    assert snap["outbox_depth"] == 3
    json.dumps(snap)


def test_thread_safe_counting() -> None:
    stats = DaemonStats()

    def work() -> None:
        for _ in range(1000):
            stats.count("frames")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.snapshot()["counts"]["frames"] == 4000
