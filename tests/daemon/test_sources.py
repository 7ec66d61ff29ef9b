"""Frame sources over real files (LFW images, a small MJPG video) and the resilient supervisor."""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facegate.config import SourceConfig
from facegate.daemon.sources import (
    FolderSource,
    Frame,
    ResilientSource,
    VideoSource,
    make_source,
    safe_source_name,
)
from facegate.errors import CaptureError, ConfigError
from facegate.face.image_io import load_image

PERSON = "Aaron_Peirsol"  # four images in LFW


class HealthLog:
    """A real on_health callback that records (kind, message) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, message: str) -> None:
        with self._lock:
            self.events.append((kind, message))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for kind, _ in self.events]


def read_frames(source: FolderSource | VideoSource, count: int, limit_s: float = 5.0) -> list:
    """Read until ``count`` frames came or the source ended."""
    frames: list[Frame] = []
    deadline = time.monotonic() + limit_s
    while len(frames) < count and not source.ended and time.monotonic() < deadline:
        frame = source.read()
        if frame is not None:
            frames.append(frame)
    return frames


@pytest.fixture
def person_dir(lfw_images: Path) -> Path:
    return lfw_images / PERSON


def test_folder_source_reads_sorted_and_loops(person_dir: Path) -> None:
    paths = sorted(person_dir.glob("*.jpg"))
    source = FolderSource(person_dir, loop=True, fps=1000)
    source.open()
    frames = read_frames(source, len(paths) + 2)
    source.close()
    assert [f.index for f in frames] == list(range(len(paths) + 2))
    for frame, path in zip(frames, [*paths, *paths[:2]], strict=True):
        assert frame.image.dtype == np.uint8 and frame.image.shape == (250, 250, 3)
        assert np.array_equal(frame.image, load_image(path))
        assert frame.source == f"folder:{person_dir}"
    assert frames[0].timestamp <= frames[-1].timestamp
    assert not source.ended


def test_folder_source_without_loop_ends(person_dir: Path) -> None:
    source = FolderSource(person_dir, loop=False, fps=1000)
    source.open()
    frames = read_frames(source, 100)
    assert len(frames) == 4
    assert source.ended
    assert source.read() is None


def test_folder_source_paces_reads(person_dir: Path) -> None:
    source = FolderSource(person_dir, loop=True, fps=20)
    source.open()
    started = time.monotonic()
    frames = read_frames(source, 4)
    # Four frames at 20 fps: the first at once, three more 50 ms apart.
    assert len(frames) == 4
    assert time.monotonic() - started >= 0.14


def test_folder_source_skips_a_bad_file_with_one_warning(
    person_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = sorted(person_dir.glob("*.jpg"))[:2]
    shutil.copy(good[0], tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"this is not a JPEG")
    shutil.copy(good[1], tmp_path / "c.jpg")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    source = FolderSource(tmp_path, loop=True, fps=1000)
    source.open()
    with caplog.at_level(logging.WARNING, logger="facegate.daemon.sources"):
        frames = read_frames(source, 4)
    assert len(frames) == 4
    for frame, path in zip(frames, good * 2, strict=True):
        assert np.array_equal(frame.image, load_image(path))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "b.jpg" in warnings[0].getMessage()


def test_folder_source_refuses_empty_and_all_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no images"):
        FolderSource(tmp_path).open()
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    source = FolderSource(tmp_path, fps=1000)
    source.open()
    with pytest.raises(CaptureError, match="no readable images"):
        source.read()
    with pytest.raises(CaptureError, match="not a folder"):
        FolderSource(tmp_path / "missing").open()


def write_video(path: Path, colours_rgb: list[tuple[int, int, int]]) -> None:
    """A small MJPG .avi whose frames are flat colours (given in RGB)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for rgb in colours_rgb:
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:] = rgb[::-1]  # VideoWriter takes BGR
        writer.write(frame)
    writer.release()


def test_video_source_reads_rgb_then_ends(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    colours = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]
    write_video(path, colours)
    source = VideoSource(path)
    source.open()
    frames = read_frames(source, 10)
    assert source.ended
    assert source.read() is None
    source.close()
    assert [f.index for f in frames] == [0, 1, 2]
    for frame, rgb in zip(frames, colours, strict=True):
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        mean = frame.image.reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - np.array(rgb)).max() < 12, (mean, rgb)
    assert frames[0].source == str(path)


def test_video_source_missing_file_raises_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError):
        VideoSource(tmp_path / "missing.avi").open()


def test_source_names_never_carry_credentials() -> None:
    url = "rtsp://admin:hunter2@10.0.0.5:554/stream1?token=s3cret"
    assert safe_source_name(url) == "rtsp://10.0.0.5:554/stream1"
    assert safe_source_name("/srv/replay/door.avi") == "/srv/replay/door.avi"
    source = VideoSource("rtsp://admin:hunter2@127.0.0.1:1/x", timeout_s=0.5)
    assert "hunter2" not in source.name
    with pytest.raises(CaptureError) as caught:
        source.open()  # nothing listens on port 1
    assert "hunter2" not in str(caught.value)


# -- ResilientSource over real FrameSource classes ---------------------------------------------


class SyntheticSource:
    """A real FrameSource: frames of a counter-shaded image, optionally finite or hanging."""

    def __init__(
        self,
        name: str = "synthetic",
        frames: int | None = None,
        hang_after: int | None = None,
        release: threading.Event | None = None,
        fail_open: bool = False,
        hang_open: bool = False,
    ) -> None:
        self.name = name
        self.ended = False
        self.closed = False
        self._frames = frames
        self._hang_after = hang_after
        self._release = release
        self._fail_open = fail_open
        self._hang_open = hang_open
        self._index = 0

    def open(self) -> None:
        if self._hang_open:
            assert self._release is not None
            self._release.wait()
        if self._fail_open:
            raise CaptureError(f"{self.name}: cannot open")

    def read(self) -> Frame | None:
        if self._hang_after is not None and self._index >= self._hang_after:
            assert self._release is not None
            self._release.wait()  # a driver call that never returns
        if self._frames is not None and self._index >= self._frames:
            self.ended = True
            return None
        time.sleep(0.002)
        image = np.full((8, 8, 3), self._index % 256, np.uint8)
        frame = Frame(image, time.monotonic(), self._index, self.name)
        self._index += 1
        return frame

    def close(self) -> None:
        self.closed = True


def wait_for(predicate, limit_s: float = 3.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_resilient_source_reopens_with_backoff_and_reports_transitions_once() -> None:
    opened: list[float] = []
    health = HealthLog()

    def factory() -> SyntheticSource:
        opened.append(time.monotonic())
        return SyntheticSource(name="flaky", fail_open=len(opened) <= 4)

    source = ResilientSource(
        factory, read_timeout_s=1.0, reopen_min_s=0.02, reopen_max_s=0.08, on_health=health
    )
    source.start()
    try:
        frame = source.latest(timeout=3.0)
    finally:
        source.stop()
    assert frame is not None and frame.source == "flaky"
    assert len(opened) == 5
    gaps = np.diff(opened)
    # Exponential backoff, capped: at least 0.02, 0.04, 0.08, 0.08 s between attempts.
    assert all(gap >= want * 0.9 for gap, want in zip(gaps, [0.02, 0.04, 0.08, 0.08], strict=True))
    assert health.kinds() == ["source_lost", "source_restored"]
    assert "flaky" in health.events[0][1] and "cannot open" in health.events[0][1]


def test_resilient_source_reopens_an_ended_source() -> None:
    health = HealthLog()
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        made.append(SyntheticSource(frames=3))
        return made[-1]

    source = ResilientSource(
        factory, read_timeout_s=1.0, reopen_min_s=0.01, reopen_max_s=0.01, on_health=health
    )
    source.start()
    try:
        assert wait_for(lambda: len(made) >= 3)
    finally:
        source.stop()
    assert all(s.closed for s in made)
    kinds = health.kinds()
    assert kinds[:3] == ["source_lost", "source_restored", "source_lost"]
    assert all(a != b for a, b in itertools.pairwise(kinds))  # strictly alternating
    assert "ended" in health.events[0][1]


def test_resilient_source_abandons_a_hung_read_and_replaces_the_source() -> None:
    release = threading.Event()
    health = HealthLog()
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        hang = 2 if not made else None
        made.append(SyntheticSource(name=f"gen{len(made)}", hang_after=hang, release=release))
        return made[-1]

    source = ResilientSource(
        factory, read_timeout_s=0.3, reopen_min_s=0.01, reopen_max_s=0.05, on_health=health
    )
    source.start()
    try:
        started = time.monotonic()
        assert wait_for(lambda: health.kinds() == ["source_lost", "source_restored"], 3.0)
        frame = source.latest(timeout=2.0)
        assert time.monotonic() - started < 2.5
    finally:
        source.stop()
        release.set()
    assert frame is not None and frame.source == "gen1"
    assert source.abandoned_reads == 1
    assert "no answer" in health.events[0][1]
    # Once the hung call returns, its thread closes the abandoned source itself.
    assert wait_for(lambda: made[0].closed, 2.0)


def test_hung_threads_are_bounded_then_recovered() -> None:
    release = threading.Event()
    made: list[SyntheticSource] = []

    def factory() -> SyntheticSource:
        made.append(SyntheticSource(hang_open=True, release=release))
        return made[-1]

    source = ResilientSource(
        factory, read_timeout_s=0.1, reopen_min_s=0.01, reopen_max_s=0.01, on_health=HealthLog()
    )
    source.start()
    try:
        assert wait_for(lambda: source.abandoned_reads >= 4)
        time.sleep(0.4)  # long enough for several more attempts, were they allowed
        assert len(made) == 4 and source.abandoned_reads == 4
        release.set()  # the driver calls return: the left-behind threads end, capture resumes
        assert source.latest(timeout=3.0) is not None
    finally:
        source.stop()
        release.set()
    assert wait_for(lambda: all(s.closed for s in made[:4]), 2.0)


def test_latest_gives_the_freshest_frame_once() -> None:
    source = ResilientSource(
        lambda: SyntheticSource(frames=None),
        read_timeout_s=1.0,
        reopen_min_s=0.01,
        reopen_max_s=0.01,
        on_health=HealthLog(),
    )
    source.start()
    try:
        first = source.latest(timeout=2.0)
        time.sleep(0.1)  # the reader keeps going: dozens of frames arrive meanwhile
        second = source.latest(timeout=2.0)
        third = source.latest(timeout=2.0)
    finally:
        source.stop()
    assert first is not None and second is not None and third is not None
    assert second.index > first.index + 5  # no backlog: the frames in between were dropped
    assert third.index > second.index  # never the same frame twice


def test_stop_is_prompt_during_a_long_backoff() -> None:
    health = HealthLog()
    source = ResilientSource(
        lambda: SyntheticSource(fail_open=True),
        read_timeout_s=1.0,
        reopen_min_s=30.0,
        reopen_max_s=60.0,
        on_health=health,
    )
    source.start()
    assert wait_for(lambda: health.kinds() == ["source_lost"])
    started = time.monotonic()
    source.stop()
    assert time.monotonic() - started < 1.0
    assert source.latest(timeout=0.1) is None


def test_factory_errors_and_broken_callbacks_never_reach_the_caller() -> None:
    def factory() -> SyntheticSource:
        raise RuntimeError("driver exploded")

    def on_health(kind: str, message: str) -> None:
        raise ValueError("callback bug")

    source = ResilientSource(
        factory, read_timeout_s=0.5, reopen_min_s=0.01, reopen_max_s=0.02, on_health=on_health
    )
    source.start()
    try:
        assert source.latest(timeout=0.2) is None
        assert wait_for(lambda: source.reopens >= 2)
    finally:
        source.stop()
    assert not source.healthy


def test_missing_camera_never_raises() -> None:
    health = HealthLog()
    config = SourceConfig(kind="camera", camera=99, reopen_min_s=0.05, reopen_max_s=0.1)
    source = make_source(config, health)
    source.start()
    try:
        assert source.latest(timeout=0.3) is None
        assert wait_for(lambda: source.reopens >= 2)
    finally:
        source.stop()
    assert health.kinds() == ["source_lost"]
    assert "camera:99" in health.events[0][1]


def test_make_source_folder_delivers_lfw_frames(person_dir: Path) -> None:
    health = HealthLog()
    config = SourceConfig(kind="folder", folder=person_dir, fps=50)
    source = make_source(config, health)
    source.start()
    try:
        frame = source.latest(timeout=3.0)
    finally:
        source.stop()
    assert frame is not None and frame.image.shape == (250, 250, 3)
    assert health.events == []  # healthy from the start: no transition to report


def test_make_source_refuses_kind_none() -> None:
    # model_construct: "none" is a valid kind once the daemon offers trigger-only operation.
    with pytest.raises(ConfigError, match="none"):
        make_source(SourceConfig.model_construct(kind="none"), HealthLog())


def test_make_source_video_file_replays(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, [(200, 200, 200)] * 3)
    health = HealthLog()
    config = SourceConfig(kind="url", url=str(path), fps=100, reopen_min_s=0.01)
    source = make_source(config, health)
    source.start()
    try:
        assert source.latest(timeout=3.0) is not None
        # The file ends, is reported lost, and is reopened from the start.
        assert wait_for(lambda: health.kinds()[:2] == ["source_lost", "source_restored"])
    finally:
        source.stop()
