"""Helpers for the fault tests: registry checks and filesystems that fail.

A full disk and a read-only filesystem are real mounts (tmpfs, read-only bind) made in a user
and mount namespace (``unshare -rm``, no root needed); the test process reaches them through
``/proc/<pid>/root`` of the process holding the namespace.
"""

from __future__ import annotations

import queue
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def integrity(db: Path) -> str:
    """SQLite's own consistency check of ``db``: ``"ok"`` when sound."""
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def table_rows(db: Path, table: str) -> list[tuple]:
    """Every row of ``table``, by rowid."""
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def wait_until(predicate, limit_s: float, what: str, step: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after limit_s."""
    deadline = time.monotonic() + limit_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {limit_s} s waiting for {what}")
        time.sleep(step)


@contextmanager
def namespace_mount(mountpoint: Path, options: str, source: str = "tmpfs") -> Iterator[Path]:
    """Mount in a private user+mount namespace; yield the path that reaches the mount from here.

    ``options`` like ``"-t tmpfs -o size=16k"`` or ``"--bind -o ro"`` (with ``source`` the
    folder to bind). Skips when unprivileged namespaces are not available.
    """
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    mountpoint.mkdir(parents=True, exist_ok=True)
    script = f"mount {options} {source} {mountpoint} && echo mounted && exec sleep 600"
    proc = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else b""
        if line.strip() != b"mounted":
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.skip(f"cannot mount in a user namespace here: {err.strip()}")
        yield Path(f"/proc/{proc.pid}/root") / mountpoint.relative_to("/")
    finally:
        proc.kill()
        proc.wait()


def fill(folder: Path) -> None:
    """Write into ``folder`` until its filesystem is full."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass


def drain(watcher, topic: str, settle_s: float = 0.5) -> list[bytes]:
    """Every payload a ``mqtt_support.Listener`` holds for ``topic`` after ``settle_s``,
    removed from it."""
    time.sleep(settle_s)
    while True:
        try:
            watcher.pending.append(watcher.messages.get_nowait())
        except queue.Empty:
            break
    got = [payload for t, payload, _ in watcher.pending if t == topic]
    watcher.pending[:] = [m for m in watcher.pending if m[0] != topic]
    return got


def model_variant(exact_model_dir: Path, out: Path, bias_shift: float) -> Path:
    """A working copy of the tiny model with a shifted head (its own sha256)."""
    from facegate.model.bundle import load_model_dir, save_model_dir

    base = load_model_dir(exact_model_dir)
    layer = base.siamese.get_layer("classifier")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + bias_shift])
    save_model_dir(
        base.siamese,
        out,
        name=out.name,
        arch="compact",
        template=base.manifest.template,
        thresholds=base.manifest.thresholds,
    )
    return out
