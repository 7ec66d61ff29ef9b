"""Frame sources (camera, video URL or file, image folder) and a supervisor that keeps one alive.

A ``FrameSource`` is a plain blocking reader; its ``open`` and ``read`` may raise (typically
``CaptureError``) and may even hang. ``ResilientSource`` wraps a factory of such sources for the
daemon: reads run on a background thread, a call that outlives the read timeout is abandoned,
a failed or ended source is replaced with exponential backoff, health transitions are
reported once each, and the caller only ever sees the freshest frame or None.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from facegate.config import SourceConfig
from facegate.errors import CaptureError, ConfigError
from facegate.face.image_io import DEFAULT_MAX_SIDE, ImageDecodeError, load_image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

# A paced read sleeps at most this long before answering "no frame yet" (None), so that a slow
# fps never looks like a hung read and a stop is noticed quickly.
_MAX_PACING_SLEEP_S = 0.1
# Pause after a read answered None without ending, so a source that never blocks cannot spin.
_IDLE_READ_PAUSE_S = 0.005
# How long stop() waits for the supervisor, and the supervisor for the current reader thread.
_STOP_JOIN_S = 3.0
_READER_JOIN_S = 1.5
# Hung reader threads that may be left behind at once; past this no new source is opened until
# one returns, so a camera that hangs every time cannot pile up threads over months.
_MAX_ABANDONED = 4

HealthCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class Frame:
    """One captured frame: ``image`` (H, W, 3) uint8 RGB, shared between threads: do not modify.

    ``timestamp`` is ``time.monotonic()`` seconds at capture, ``index`` counts frames from 0 per
    source object, ``source`` is a name safe for logs (no credentials).
    """

    image: np.ndarray
    timestamp: float
    index: int
    source: str


class FrameSource(Protocol):
    """A blocking frame reader; ``open`` and ``read`` may raise CaptureError, ``close`` never."""

    name: str
    # True once a finite source (a video file, a folder without loop) has no more frames.
    ended: bool

    def open(self) -> None:
        """Acquire the device or file; raise CaptureError when it cannot be opened."""
        ...

    def read(self) -> Frame | None:
        """The next frame, or None when there is none right now (or the source has ended)."""
        ...

    def close(self) -> None:
        """Release the device or file; safe to call more than once."""
        ...


def safe_source_name(url: str) -> str:
    """``url`` without user:password and query string, fit for logs; a plain path is unchanged."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    # The query may carry tokens (snapshot URLs with ?user=..&password=..): drop it entirely.
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """A VideoCapture frame (BGR, or grey from some drivers) to (H, W, 3) uint8 RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _Pacer:
    """Spaces reads ``1 / fps`` seconds apart without ever sleeping longer than a short slice."""

    def __init__(self, fps: float | None) -> None:
        self._interval = 1.0 / fps if fps else 0.0
        self._due = 0.0

    def ready(self) -> bool:
        """True when the next frame is due (and schedules the one after); else sleep a little."""
        now = time.monotonic()
        wait = self._due - now
        if wait > 0:
            time.sleep(min(wait, _MAX_PACING_SLEEP_S))
            if wait > _MAX_PACING_SLEEP_S:
                return False
            now = time.monotonic()
        # Keep the slot grid while on time (no drift); when far behind, restart it from now
        # rather than bursting frames to catch up.
        base = self._due if now - self._due < self._interval else now
        self._due = base + self._interval
        return True


class _CaptureSource:
    """Shared VideoCapture plumbing for camera and video sources."""

    name: str

    def __init__(self, fps: float | None) -> None:
        self.ended = False
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._pacer = _Pacer(fps)

    def _open_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def _describe(self, err: cv2.error) -> str:
        """The last line of an OpenCV error, with anything secret in the target removed."""
        lines = str(err).strip().splitlines()
        return lines[-1][-200:] if lines else type(err).__name__

    def open(self) -> None:
        """Open the capture; raise CaptureError when OpenCV cannot."""
        self.close()
        self.ended = False
        try:
            capture = self._open_capture()
        except cv2.error as err:
            raise CaptureError(f"{self.name}: cannot open: {self._describe(err)}") from err
        if not capture.isOpened():
            capture.release()
            raise CaptureError(f"{self.name}: cannot open")
        self._capture = capture
        logger.info("Opened frame source %s", self.name)

    def _grab(self) -> np.ndarray | None:
        if self._capture is None:
            raise CaptureError(f"{self.name}: read before open")
        try:
            ok, image = self._capture.read()
        except cv2.error as err:
            raise CaptureError(f"{self.name}: read failed: {self._describe(err)}") from err
        return image if ok and image is not None and image.size else None

    def _frame(self, image: np.ndarray) -> Frame:
        frame = Frame(_to_rgb(image), time.monotonic(), self._index, self.name)
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the capture."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class CameraSource(_CaptureSource):
    """A local camera by index (V4L2 on Linux) asking for ``width`` x ``height`` px at ``fps``."""

    def __init__(self, index: int, width: int = 640, height: int = 480, fps: float = 10.0) -> None:
        super().__init__(fps=None)  # a camera delivers at its own pace; reads block until then
        self.name = f"camera:{index}"
        self._camera = index
        self._size = (width, height)
        self._fps = fps

    def _open_capture(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self._camera)
        if capture.isOpened():
            # Requests, not guarantees: drivers pick the nearest mode they support.
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
            capture.set(cv2.CAP_PROP_FPS, self._fps)
            # One buffered frame: the daemon wants the newest, not a backlog.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture

    def read(self) -> Frame | None:
        """The next camera frame; raise CaptureError when the camera stops delivering."""
        image = self._grab()
        if image is None:
            raise CaptureError(f"{self.name}: read failed (camera gone?)")
        return self._frame(image)


class VideoSource(_CaptureSource):
    """A video file or an RTSP/HTTP stream; the end of the video sets ``ended``.

    ``fps`` paces reads (use it for files, which OpenCV would otherwise decode as fast as it
    can); leave it None for live streams, whose reads block until the next frame and must be
    drained to stay fresh. ``timeout_s`` bounds OpenCV's own open and read waits (FFmpeg).
    """

    def __init__(
        self, url_or_path: str | Path, fps: float | None = None, timeout_s: float | None = None
    ) -> None:
        super().__init__(fps=fps)
        self._target = str(url_or_path)
        self.name = safe_source_name(self._target)
        self._timeout_s = timeout_s

    def _open_capture(self) -> cv2.VideoCapture:
        params: list[int] = []
        if self._timeout_s:
            ms = max(1, int(self._timeout_s * 1000))
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        return cv2.VideoCapture(self._target, cv2.CAP_ANY, params)

    def _describe(self, err: cv2.error) -> str:
        """As the base, with the raw URL and its user:password replaced (FFmpeg may echo them)."""
        text = super()._describe(err).replace(self._target, self.name)
        userinfo = urlsplit(self._target).netloc.rpartition("@")[0]
        return text.replace(userinfo, "***") if userinfo else text

    def read(self) -> Frame | None:
        """The next frame, None while pacing, or None with ``ended`` set at the end."""
        if self.ended:
            return None
        if not self._pacer.ready():
            return None
        image = self._grab()
        if image is None:
            self.ended = True
            logger.info("Frame source %s ended after %d frames", self.name, self._index)
            return None
        return self._frame(image)


class FolderSource:
    """Images under ``folder`` (recursively, sorted by path) as frames paced at ``fps``.

    Files whose suffix is not an image's are ignored; an image that cannot be decoded is
    skipped with one warning and not tried again. With ``loop`` the images repeat forever,
    otherwise ``ended`` is set after the last one.
    """

    def __init__(
        self,
        folder: str | Path,
        loop: bool = True,
        fps: float = 10.0,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> None:
        self.folder = Path(folder)
        self.name = f"folder:{self.folder}"
        self.ended = False
        self._loop = loop
        self._max_side = max_side
        self._pacer = _Pacer(fps)
        self._paths: list[Path] = []
        self._bad: set[Path] = set()
        self._next = 0
        self._index = 0

    def open(self) -> None:
        """List the images; raise CaptureError when the folder is missing or holds none."""
        if not self.folder.is_dir():
            raise CaptureError(f"{self.name}: not a folder")
        paths = [
            p
            for p in self.folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(self.folder).parts)
            and p.is_file()
        ]
        if not paths:
            raise CaptureError(f"{self.name}: no images")
        self._paths = sorted(paths)
        self._next = 0
        self.ended = False
        logger.info("Opened frame source %s: %d images", self.name, len(self._paths))

    def read(self) -> Frame | None:
        """The next decodable image, None while pacing, or None with ``ended`` set at the end."""
        if self.ended or not self._pacer.ready():
            return None
        # At most one pass over the list per read, so a folder of bad files cannot spin here.
        for _ in range(len(self._paths)):
            if self._next >= len(self._paths):
                if not self._loop:
                    self.ended = True
                    logger.info("Frame source %s ended after %d frames", self.name, self._index)
                    return None
                self._next = 0
            path = self._paths[self._next]
            self._next += 1
            if path in self._bad:
                continue
            try:
                image = load_image(path, max_side=self._max_side)
            except ImageDecodeError as err:
                logger.warning("Skipping image in %s: %s", self.name, err)
                self._bad.add(path)
                continue
            frame = Frame(image, time.monotonic(), self._index, self.name)
            self._index += 1
            return frame
        if len(self._bad) >= len(self._paths):
            raise CaptureError(f"{self.name}: no readable images")
        return None

    def close(self) -> None:
        """Forget the listing (nothing is held open between reads)."""
        self._paths = []


class _Reader:
    """One source generation: the source, its thread, and what the supervisor watches."""

    def __init__(self, source: FrameSource, generation: int) -> None:
        self.source = source
        self.generation = generation
        self.done = threading.Event()
        self.abandoned = False
        self.failure = ""
        self.frames = 0
        # Start of the open/read call in progress (monotonic s), None between calls.
        self.call_started: float | None = None


class ResilientSource:
    """Keeps a frame source alive for the daemon and hands out only its freshest frame.

    Reads run on a background reader thread. A call to ``open`` or ``read`` lasting more than
    ``read_timeout_s`` is abandoned: its thread (a daemon thread) is left to return whenever it
    does, then closes its own source, and a fresh source from ``factory`` takes over. A source
    that fails, raises or ends is reopened after ``reopen_min_s`` doubling up to ``reopen_max_s``
    (back to the minimum once frames flowed again). ``on_health(kind, message)`` is called once
    per transition with kind ``"source_lost"`` or ``"source_restored"``, from a capture thread.
    Nothing here raises to the caller.
    """

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        read_timeout_s: float,
        reopen_min_s: float,
        reopen_max_s: float,
        on_health: HealthCallback,
    ) -> None:
        self._factory = factory
        self._read_timeout_s = read_timeout_s
        self._reopen_min_s = reopen_min_s
        self._reopen_max_s = max(reopen_max_s, reopen_min_s)
        self._on_health = on_health
        self._poll_s = min(0.05, read_timeout_s / 5)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._health_lock = threading.Lock()
        self._latest: Frame | None = None
        self._seq = 0
        self._taken_seq = 0
        self._healthy: bool | None = None  # None until the first outcome
        self._reader: _Reader | None = None
        self._abandoned: list[_Reader] = []
        self._spawn_failure = ""
        self._thread: threading.Thread | None = None
        self._generation = 0
        self.name = "source"
        self.frames_read = 0
        self.reopens = 0
        self.abandoned_reads = 0

    @property
    def healthy(self) -> bool:
        """True while the current source delivers frames."""
        return bool(self._healthy)

    def start(self) -> None:
        """Start the supervisor thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._supervise, name="facegate-capture", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the source; returns within a few seconds even if a read hangs."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(_STOP_JOIN_S)
            if self._thread.is_alive():
                logger.warning("Capture supervisor did not stop within %.1f s", _STOP_JOIN_S)
            self._thread = None

    def latest(self, timeout: float) -> Frame | None:
        """The newest frame not yet returned, waiting up to ``timeout`` s; older ones are dropped.

        None when no new frame arrives in time (source lost, stopped, or just slow).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._seq == self._taken_seq or self._latest is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(remaining)
            self._taken_seq = self._seq
            return self._latest

    # -- supervisor thread ------------------------------------------------------------------

    def _supervise(self) -> None:
        delay = self._reopen_min_s
        while not self._stop.is_set():
            reader = self._spawn()
            if reader is None:
                failure = self._spawn_failure
            else:
                self._watch(reader)
                self._retire(reader, "stopped delivering frames")
                if self._stop.is_set():
                    self._join_reader(reader)
                    break
                if reader.frames:
                    delay = self._reopen_min_s
                failure = reader.failure
            self._set_health(False, failure)
            logger.debug("Reopening %s in %.2f s", self.name, delay)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self._reopen_max_s)
            self.reopens += 1

    def _spawn(self) -> _Reader | None:
        """Build a source and start its reader thread; None (and a failure) if building fails."""
        self._spawn_failure = ""
        self._abandoned = [r for r in self._abandoned if not r.done.is_set()]
        if len(self._abandoned) >= _MAX_ABANDONED:
            self._spawn_failure = f"{len(self._abandoned)} reads still hung; not opening another"
            return None
        try:
            source = self._factory()
        except Exception as err:  # a factory may raise anything; the daemon must go on
            self._spawn_failure = f"cannot create source: {err}"
            return None
        self.name = getattr(source, "name", "source")
        self._generation += 1
        reader = _Reader(source, self._generation)
        with self._cond:
            self._reader = reader
        threading.Thread(
            target=self._read_loop,
            args=(reader,),
            name=f"facegate-reader-{reader.generation}",
            daemon=True,  # an abandoned, hung read must not keep the process alive
        ).start()
        return reader

    def _watch(self, reader: _Reader) -> None:
        """Return when the reader failed or ended, hung past the timeout, or stop was asked."""
        while not self._stop.wait(self._poll_s):
            if reader.done.is_set():
                return
            started = reader.call_started
            if started is not None and time.monotonic() - started > self._read_timeout_s:
                self.abandoned_reads += 1
                self._abandoned.append(reader)
                self._retire(reader, f"no answer from the source within {self._read_timeout_s} s")
                logger.warning("Abandoned a hung read on %s", self.name)
                return

    def _retire(self, reader: _Reader, failure: str) -> None:
        with self._cond:
            reader.abandoned = True
            if not reader.failure:
                reader.failure = failure
            if self._reader is reader:
                self._reader = None
                # Frames from a source that is gone are stale: never hand them out later.
                self._latest = None

    def _join_reader(self, reader: _Reader) -> None:
        if not reader.done.wait(_READER_JOIN_S):
            logger.warning("Reader of %s still blocked at stop; left behind", self.name)

    # -- reader threads ---------------------------------------------------------------------

    def _read_loop(self, reader: _Reader) -> None:
        source = reader.source
        try:
            reader.call_started = time.monotonic()
            source.open()
            reader.call_started = None
            while not self._stop.is_set() and not reader.abandoned:
                reader.call_started = time.monotonic()
                frame = source.read()
                reader.call_started = None
                if frame is not None:
                    if not self._publish(reader, frame):
                        break
                elif getattr(source, "ended", False):
                    reader.failure = "the source ended"
                    break
                else:
                    time.sleep(_IDLE_READ_PAUSE_S)
        except Exception as err:  # any error of any source: report it, the supervisor reopens
            reader.failure = str(err) or type(err).__name__
        finally:
            reader.call_started = None
            try:
                source.close()
            except Exception as err:  # closing a broken device must not kill the thread quietly
                logger.debug("Closing %s failed: %s", getattr(source, "name", "source"), err)
            reader.done.set()

    def _publish(self, reader: _Reader, frame: Frame) -> bool:
        """Make ``frame`` the latest; False when this reader has been retired meanwhile."""
        with self._cond:
            if reader.abandoned or self._reader is not reader:
                return False
            self._latest = frame
            self._seq += 1
            self.frames_read += 1
            reader.frames += 1
            self._cond.notify_all()
        if reader.frames == 1:
            self._set_health(True, f"{self.name}: frames flowing", reader)
        return True

    def _set_health(self, healthy: bool, message: str, reader: _Reader | None = None) -> None:
        with self._health_lock:
            # The supervisor retires a reader before reporting it lost: a retired reader's
            # late "restored" would come after that "lost" and leave the state wrong.
            if reader is not None and reader.abandoned:
                return
            previous, self._healthy = self._healthy, healthy
            if healthy:
                if previous is False:
                    logger.info("Frame source restored: %s", message)
                    self._emit("source_restored", message)
                return
            if previous is not False:
                if self.name not in message:
                    message = f"{self.name}: {message}"
                logger.warning("Frame source lost: %s", message)
                self._emit("source_lost", message)

    def _emit(self, kind: str, message: str) -> None:
        try:
            self._on_health(kind, message)
        except Exception:  # a broken callback must not stop capture; log with the traceback
            logger.exception("Health callback failed for %s", kind)


def _is_local_file(url: str) -> bool:
    return "://" not in url and os.path.isfile(url)


def make_source(config: SourceConfig, on_health: HealthCallback) -> ResilientSource:
    """The daemon's frame source as configured (camera, url or folder), not yet started.

    Raise ConfigError for kind ``none`` (the daemon then runs on MQTT triggers alone and must
    not ask for a source).
    """
    if config.kind not in ("camera", "url", "folder"):
        raise ConfigError(f"source.kind = {config.kind!r}: no frame source to make")

    def factory() -> FrameSource:
        if config.kind == "folder":
            assert config.folder is not None  # checked by SourceConfig
            return FolderSource(config.folder, loop=config.loop, fps=config.fps)
        if config.kind == "url":
            # Pace files; streams block on their own clock and must be drained to stay fresh.
            url = config.url.get_secret_value()
            fps = config.fps if _is_local_file(url) else None
            return VideoSource(url, fps=fps, timeout_s=config.read_timeout_s)
        return CameraSource(config.camera, config.width, config.height, config.fps)

    return ResilientSource(
        factory,
        read_timeout_s=config.read_timeout_s,
        reopen_min_s=config.reopen_min_s,
        reopen_max_s=config.reopen_max_s,
        on_health=on_health,
    )
