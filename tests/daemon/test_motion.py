"""The motion gate over synthetic frames: static scenes, noise, small and large moving objects."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.config import MotionConfig
from facegate.daemon.motion import MotionDetector, MotionResult

HEIGHT, WIDTH = 480, 640
FPS = 8.0  # frame times k/8 are exact in binary: cooldown edges are not rounding luck


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A textured, fixed (H, W, 3) uint8 RGB background: a door frame and some clutter."""
    rng = np.random.default_rng(7)
    base = rng.integers(60, 140, size=(HEIGHT // 16, WIDTH // 16, 3), dtype=np.uint8)
    image = np.kron(base, np.ones((16, 16, 1), np.uint8))
    image[40:440, 220:420] = (150, 110, 70)  # the door
    return image


def with_square(scene: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    frame = scene.copy()
    frame[y : y + side, x : x + side] = (240, 240, 240)
    return frame


def run(detector: MotionDetector, frames: list[np.ndarray], start: float = 0.0) -> list:
    return [detector.update(f, start + i / FPS) for i, f in enumerate(frames)]


def test_first_frame_only_seeds_the_background(scene: np.ndarray) -> None:
    result = MotionDetector(MotionConfig()).update(scene, 0.0)
    assert result == MotionResult(moving=False, changed=0.0, triggered=False)


def test_static_scene_gives_no_motion(scene: np.ndarray) -> None:
    results = run(MotionDetector(MotionConfig()), [scene] * 30)
    assert not any(r.moving or r.triggered for r in results)
    assert max(r.changed for r in results) == 0.0


def test_sensor_noise_below_the_pixel_threshold_is_ignored(scene: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    noisy = scene.astype(np.int16)
    frames = [
        np.clip(noisy + rng.integers(-12, 13, scene.shape, dtype=np.int16), 0, 255).astype(np.uint8)
        for _ in range(12)
    ]
    results = run(MotionDetector(MotionConfig()), frames)
    assert not any(r.moving for r in results)
    assert max(r.changed for r in results) < 0.001


def test_moving_square_triggers_once_within_the_cooldown(scene: np.ndarray) -> None:
    detector = MotionDetector(MotionConfig(cooldown_s=3.0))
    frames = [scene] * 5 + [with_square(scene, 40 + 20 * i, 150, 120) for i in range(20)]
    results = run(detector, frames)  # 3 s of frames: all inside one cooldown
    assert not any(r.moving for r in results[:5])
    assert all(r.moving for r in results[5:])
    assert [i for i, r in enumerate(results) if r.triggered] == [5]
    assert results[5].changed > 0.03  # a 120 px square is ~4.7% of the frame


def test_motion_after_the_cooldown_triggers_again(scene: np.ndarray) -> None:
    detector = MotionDetector(MotionConfig(cooldown_s=1.0))
    frames = [scene] * 3 + [with_square(scene, 40 + 20 * i, 150, 120) for i in range(25)]
    results = run(detector, frames)
    triggers = [i for i, r in enumerate(results) if r.triggered]
    # Continuous motion from frame 3 re-triggers once per cooldown: every 8 frames at 8 fps.
    assert triggers == [3, 11, 19, 27]


def test_cooldown_uses_the_given_timestamps_not_the_clock(scene: np.ndarray) -> None:
    detector = MotionDetector(MotionConfig(cooldown_s=5.0))
    detector.update(scene, 100.0)
    first = detector.update(with_square(scene, 100, 100, 150), 100.1)
    detector.update(scene, 100.2)
    second = detector.update(with_square(scene, 300, 200, 150), 104.9)
    third = detector.update(with_square(scene, 100, 100, 150), 105.2)
    assert first.triggered and second.moving and not second.triggered and third.triggered


def test_a_small_change_below_min_area_is_not_motion(scene: np.ndarray) -> None:
    frames = [scene] * 3 + [with_square(scene, 300 + 10 * i, 200, 24) for i in range(10)]
    results = run(MotionDetector(MotionConfig(min_area=0.01)), frames)
    assert not any(r.moving for r in results)
    assert 0 < max(r.changed for r in results) < 0.01


def test_background_adapts_to_a_lasting_change(scene: np.ndarray) -> None:
    moved = with_square(scene, 100, 100, 150)  # a parked object
    results = run(MotionDetector(MotionConfig(alpha=0.2)), [scene] * 3 + [moved] * 40)
    assert results[3].moving
    assert not results[-1].moving


def test_a_new_frame_size_reseeds_instead_of_crashing(scene: np.ndarray) -> None:
    detector = MotionDetector(MotionConfig())
    detector.update(scene, 0.0)
    smaller = np.ascontiguousarray(scene[:240, :320])
    assert detector.update(smaller, 0.1) == MotionResult(False, 0.0, False)
    assert not detector.update(smaller, 0.2).moving


def test_reset_forgets_background_and_cooldown(scene: np.ndarray) -> None:
    detector = MotionDetector(MotionConfig(cooldown_s=60.0))
    moving = with_square(scene, 100, 100, 150)
    run(detector, [scene, moving])
    detector.reset()
    assert not detector.update(scene, 1.0).moving
    assert detector.update(moving, 1.1).triggered
