"""The repository API, on SQLite and on PostgreSQL: users, galleries, embeddings, models,
access log, outbox, door state and job runs."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from facegate.errors import StorageError
from facegate.storage.files import encode_crop
from facegate.storage.records import NewGalleryImage, OutboxMessage
from facegate.storage.registry import Registry, UnknownUserError

MODEL_A = "a" * 64
MODEL_B = "b" * 64


def _image(seed: int, dim: int = 8, source: str = "x.jpg") -> NewGalleryImage:
    rng = np.random.default_rng(seed)
    encoded = encode_crop(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    vector = rng.normal(size=dim).astype(np.float32)
    return NewGalleryImage(encoded.sha256, encoded.png, 0.5 + seed / 100, source, vector)


def _files(registry: Registry) -> list[str]:
    return [path for path, _ in registry.crops.iter_files()]


def test_user_crud(registry: Registry) -> None:
    user = registry.create_user("  Ådne Ø'Brien 李  ", display_name="Ådne")
    assert user.name == "Ådne Ø'Brien 李" and user.display_name == "Ådne" and user.active
    assert user.created_at.tzinfo is not None
    with pytest.raises(StorageError, match="already exists"):
        registry.create_user("Ådne Ø'Brien 李")
    registry.create_user("bob")
    assert [u.name for u in registry.list_users()] == ["bob", "Ådne Ø'Brien 李"]

    until = datetime(2030, 1, 1, 12, tzinfo=UTC)
    changed = registry.update_user(
        "bob", active=False, valid_until=until, schedule="Mon-Fri 07:00-19:00", gallery_consent=True
    )
    assert not changed.active and changed.valid_until == until
    assert changed.schedule == "mon-fri 07:00-19:00" and changed.gallery_consent
    assert registry.list_users(active_only=True)[0].name == "Ådne Ø'Brien 李"
    assert registry.update_user("bob", valid_until=None).valid_until is None
    with pytest.raises(StorageError, match="schedule"):
        registry.update_user("bob", schedule="someday 25:00-26:00")
    with pytest.raises(StorageError, match="timezone"):
        registry.update_user("bob", valid_from=datetime(2030, 1, 1))
    with pytest.raises(StorageError, match="after"):
        registry.update_user("bob", valid_from=until, valid_until=until - timedelta(days=1))

    renamed = registry.rename_user("bob", "Robert")
    assert renamed.name == "Robert" and renamed.display_name == "Robert"
    assert registry.user_by_id(renamed.id).name == "Robert"
    with pytest.raises(UnknownUserError):
        registry.get_user("bob")
    assert registry.find_user("nobody") is None
    with pytest.raises(StorageError, match="already exists"):
        registry.rename_user("Robert", "Ådne Ø'Brien 李")


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "tab\there", "x" * 129, "nul\x00"])
def test_bad_names_are_refused(registry: Registry, bad: str) -> None:
    with pytest.raises(StorageError, match="invalid name"):
        registry.create_user(bad)


def test_a_name_never_becomes_a_path(registry: Registry) -> None:
    registry.create_user_with_gallery("../../etc/passwd", [_image(1)], MODEL_A)
    (path,) = _files(registry)
    assert path.startswith("gallery/") and "passwd" not in path and ".." not in path


def test_gallery_and_embeddings(registry: Registry) -> None:
    user = registry.create_user_with_gallery("alice", [_image(1), _image(2)], MODEL_A)
    assert user.image_count == 2
    gallery = registry.gallery("alice")
    assert [g.quality for g in gallery] == pytest.approx([0.51, 0.52])
    assert all(g.path.startswith("gallery/") for g in gallery)
    np.testing.assert_array_equal(
        registry.read_crop(gallery[0]),
        np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8),
    )
    stored = registry.get_embeddings(MODEL_A)
    np.testing.assert_array_equal(stored[gallery[1].id], _image(2).embedding)
    assert registry.get_embeddings(MODEL_B) == {}

    added = registry.add_gallery_images("alice", [_image(2), _image(3)], MODEL_A)
    assert [a.sha256 for a in added] == [_image(3).sha256]  # the duplicate was skipped
    assert len(registry.gallery("alice")) == 3

    assert [i.id for i in registry.images_without_embedding(MODEL_B)] == [
        g.id for g in registry.gallery("alice")
    ]
    registry.put_embeddings(MODEL_B, {g.id: np.ones(4, np.float32) for g in gallery})
    assert len(registry.images_without_embedding(MODEL_B)) == 1
    registry.put_embeddings(MODEL_B, {gallery[0].id: np.full(4, 2.0, np.float32)})
    np.testing.assert_array_equal(registry.get_embeddings(MODEL_B)[gallery[0].id], [2, 2, 2, 2])
    assert registry.delete_embeddings(MODEL_B) == 2

    removed = registry.remove_gallery_image("alice", gallery[0].id)
    assert removed.id == gallery[0].id
    assert len(_files(registry)) == 2
    assert gallery[0].id not in registry.get_embeddings(MODEL_A)
    with pytest.raises(StorageError, match="no gallery image"):
        registry.remove_gallery_image("alice", gallery[0].id)


def test_gallery_matrix_stacks_active_users(registry: Registry) -> None:
    registry.create_user_with_gallery("alice", [_image(1), _image(2)], MODEL_A)
    bob = registry.create_user_with_gallery("bob", [_image(3)], MODEL_A)
    registry.create_user_with_gallery("carol", [_image(4)], MODEL_A, active=False)
    matrix = registry.gallery_matrix(MODEL_A)
    assert matrix.vectors.shape == (3, 8) and matrix.vectors.dtype == np.float32
    assert sorted(u.name for u in matrix.users.values()) == ["alice", "bob"]
    np.testing.assert_array_equal(matrix.rows_of(bob.id), _image(3).embedding[None])
    assert len(registry.gallery_matrix(MODEL_A, active_only=False).users) == 3
    empty = registry.gallery_matrix(MODEL_B)
    assert empty.vectors.shape[0] == 0 and empty.users == {}


def test_delete_user_leaves_no_file_or_row(registry: Registry) -> None:
    alice = registry.create_user_with_gallery("alice", [_image(1), _image(2)], MODEL_A)
    # bob's gallery shares one crop with alice's: it must survive her deletion
    registry.create_user_with_gallery("bob", [_image(2)], MODEL_A)
    registry.log_access(
        door="front",
        trigger="motion",
        decision="granted",
        reason="granted",
        decision_id="d1",
        user_id=alice.id,
        candidate="alice",
        score=0.9,
    )
    assert registry.delete_user("alice") == 1
    assert registry.find_user("alice") is None
    assert _files(registry) == [registry.gallery("bob")[0].path]
    assert set(registry.get_embeddings(MODEL_A)) == {registry.gallery("bob")[0].id}
    (record,) = registry.access_log()
    assert record.user_id is None and record.candidate == "alice"  # audit kept, link cleared
    registry.delete_user("bob")
    assert _files(registry) == [] and registry.all_gallery_images() == []
    assert registry.get_embeddings(MODEL_A) == {}


def test_failed_transaction_removes_the_files_it_wrote(registry: Registry) -> None:
    registry.create_user("alice")
    with pytest.raises(StorageError, match="already exists"):
        registry.create_user_with_gallery("alice", [_image(1)], MODEL_A)
    bad = NewGalleryImage(_image(2).sha256, _image(2).png, 0.5, "y.jpg", np.array([np.nan]))
    with pytest.raises(StorageError):
        registry.create_user_with_gallery("bob", [_image(3), bad], MODEL_A)
    assert registry.find_user("bob") is None
    assert _files(registry) == []


def test_orphan_sweep_spares_young_files_and_referenced_ones(registry: Registry) -> None:
    registry.create_user_with_gallery("alice", [_image(1)], MODEL_A)
    orphan = encode_crop(np.zeros((8, 8, 3), np.uint8))
    registry.crops.write(orphan)
    assert registry.sweep_orphan_files() == []  # too young: may belong to a pending enrollment
    old = time.time() - 7200
    os.utime(registry.crops.path_of(orphan.relative_path), (old, old))
    # A new enrollment of the same crop refreshes the old orphan: spared while it commits.
    assert registry.crops.write(orphan) is False
    assert registry.sweep_orphan_files() == []
    os.utime(registry.crops.path_of(orphan.relative_path), (old, old))
    assert registry.sweep_orphan_files() == [orphan.relative_path]
    assert _files(registry) == [registry.gallery("alice")[0].path]


def test_model_versions_keep_exactly_one_active(registry: Registry) -> None:
    assert registry.active_model() is None
    with pytest.raises(StorageError):
        registry.rollback_model()
    first = registry.register_model(MODEL_A, "first", "/models/a", {"acc": 0.9})
    assert registry.register_model(MODEL_A, "again", "/elsewhere").id == first.id
    registry.register_model(MODEL_B, "second", "/models/b")
    c = "c" * 64
    registry.register_model(c, "third", "/models/c")
    registry.activate_model(MODEL_A)
    time.sleep(0.01)
    registry.activate_model(MODEL_B, why="better on lfw")
    time.sleep(0.01)
    registry.activate_model(c)
    assert [m.name for m in registry.list_models() if m.active] == ["third"]
    assert registry.get_model(MODEL_A).metrics == {"acc": 0.9}
    assert registry.get_model(MODEL_A).status == "retired"

    back = registry.rollback_model(why="false accepts")
    assert back.sha256 == MODEL_B and registry.active_model().sha256 == MODEL_B
    assert registry.get_model(c).status == "rolled_back"
    assert registry.rollback_model().sha256 == MODEL_A
    assert sum(m.active for m in registry.list_models()) == 1

    registry.reject_model(c, "worse on site pairs")
    assert registry.get_model("cccccc").why == "worse on site pairs"
    with pytest.raises(StorageError):
        registry.reject_model(MODEL_A, "active")
    with pytest.raises(StorageError):
        registry.get_model("dddddddd")


def test_access_log(registry: Registry) -> None:
    alice = registry.create_user("alice")
    base = datetime(2026, 5, 1, 12, tzinfo=UTC)
    for i in range(5):
        registry.log_access(
            time=base + timedelta(minutes=i),
            door="front" if i % 2 else "back",
            trigger="motion",
            decision="granted" if i < 2 else "denied",
            reason="granted",
            decision_id=f"d{i}",
            user_id=alice.id if i < 2 else None,
            score=0.5 + i / 10,
            latency_ms=12.5,
            frames=3,
        )
    records = registry.access_log()
    assert [r.decision_id for r in records] == ["d4", "d3", "d2", "d1", "d0"]
    assert records[0].time == base + timedelta(minutes=4) and records[0].time.tzinfo is not None
    assert [r.decision_id for r in registry.access_log(door="front")] == ["d3", "d1"]
    assert [r.decision_id for r in registry.access_log(user_id=alice.id)] == ["d1", "d0"]
    since = registry.access_log(
        since=base + timedelta(minutes=1), until=base + timedelta(minutes=3)
    )
    assert [r.decision_id for r in since] == ["d2", "d1"]
    assert len(registry.access_log(decision="denied", limit=2)) == 2
    with pytest.raises(StorageError, match="constraint"):
        registry.log_access(
            door="front", trigger="mqtt", decision="denied", reason="x", decision_id="d0"
        )
    assert registry.delete_access_before(base + timedelta(minutes=2)) == 2
    assert len(registry.access_log()) == 3


def test_outbox_is_delivered_in_order(registry: Registry) -> None:
    first = registry.enqueue("facegate/front/access", '{"n": 1}')
    registry.log_access(
        door="front",
        trigger="motion",
        decision="denied",
        reason="unknown_face",
        decision_id="x1",
        events=[OutboxMessage("facegate/front/access", b'{"n": 2}', 1, False)],
    )
    registry.enqueue("facegate/front/state", b"\x00\xff", qos=0, retain=True)
    events = registry.peek_outbox()
    assert [e.payload for e in events] == [b'{"n": 1}', b'{"n": 2}', b"\x00\xff"]
    assert events[0].id == first.id and events[2].retain and events[2].qos == 0
    assert registry.outbox_depth() == 3
    registry.mark_outbox_attempt([events[0].id])
    assert registry.peek_outbox(limit=1)[0].attempts == 1
    assert registry.ack_outbox([events[0].id, events[1].id]) == 2
    assert [e.topic for e in registry.peek_outbox()] == ["facegate/front/state"]
    with pytest.raises(StorageError, match="QoS"):
        registry.enqueue("t", b"", qos=3)


def test_door_state_survives_a_reopen(registry: Registry) -> None:
    assert registry.get_door_state("front").lockout_until is None
    until = datetime(2026, 5, 1, 12, 5, tzinfo=UTC)
    registry.set_door_state("front", until, {"denied": ["2026-05-01T12:00:00+00:00"]})
    reopened = Registry(registry.engine, registry.data_dir)
    state = reopened.get_door_state("front")
    assert state.lockout_until == until and state.data["denied"][0].startswith("2026-05-01")
    registry.set_door_state("front", None)
    assert registry.get_door_state("front").data == {}


def test_job_runs(registry: Registry) -> None:
    run = registry.start_job("retrain")
    assert run.outcome == "running" and run.finished_at is None
    registry.finish_job(run.id, "failed", "out of memory")
    second = registry.start_job("retrain")
    registry.finish_job(second.id, "ok")
    registry.finish_job(registry.start_job("retention").id, "ok", "removed 3 rows")
    last = registry.last_job_runs()
    assert last["retrain"].id == second.id and last["retention"].message == "removed 3 rows"
    assert [r.outcome for r in registry.job_runs("retrain")] == ["ok", "failed"]
    with pytest.raises(StorageError):
        registry.finish_job(9999, "ok")


def test_remove_images_by_id_and_the_gallery_stamp(registry: Registry) -> None:
    stamp = registry.gallery_stamp(MODEL_A)
    assert stamp == (0, "", 0, 0)
    registry.create_user_with_gallery("alice", [_image(1), _image(2)], MODEL_A)
    bob = registry.create_user_with_gallery("bob", [_image(3)], MODEL_A)
    after_enroll = registry.gallery_stamp(MODEL_A)
    assert after_enroll != stamp and after_enroll[2] == 3
    assert registry.gallery_stamp(MODEL_B)[2] == 0

    time.sleep(0.01)
    registry.update_user("bob", active=False)
    after_disable = registry.gallery_stamp(MODEL_A)
    assert after_disable != after_enroll

    alice_first = registry.gallery("alice")[0]
    bob_only = registry.gallery("bob")[0]
    assert registry.remove_images([alice_first.id, bob_only.id]) == 2
    assert registry.user_by_id(bob.id).image_count == 0
    assert len(_files(registry)) == 1
    assert registry.gallery_stamp(MODEL_A) != after_disable
    assert registry.remove_images([]) == 0


def test_landmarks_round_trip_exactly_and_bad_ones_store_nothing(registry: Registry) -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 256, (6, 2))  # float64 pixels of a chip: stored exactly
    chip = replace(_image(1), landmarks=points)
    registry.create_user_with_gallery("ann", [chip, _image(2)], MODEL_A)
    stored, legacy = registry.gallery("ann")
    assert np.array_equal(np.array(stored.landmarks), points) and not stored.legacy
    assert legacy.landmarks is None and legacy.legacy
    assert registry.all_gallery_images()[0] == stored
    for bad in (np.array([[1.0, np.nan], [2.0, 3.0]]), np.zeros((1, 2)), np.zeros((3, 3))):
        with pytest.raises(StorageError, match="landmarks"):
            registry.add_gallery_images("ann", [replace(_image(3), landmarks=bad)], MODEL_A)
    assert len(registry.gallery("ann")) == 2
    assert len(_files(registry)) == 2
