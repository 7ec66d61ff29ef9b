"""The registry's repository API: users, galleries, embeddings, models, access log, outbox.

Everything outside ``storage/`` goes through ``Registry``; it returns the frozen records of
``facegate.storage.records`` and numpy arrays, never ORM rows. Each method is one transaction.
Crop files are written before the transaction that references them commits and removed again
when it fails; a crash in between can leave unreferenced files, which ``sweep_orphan_files``
(run by ``open_registry``) removes.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from facegate.config import StorageConfig
from facegate.enrollment.names import clean_name
from facegate.enrollment.schedule import parse_schedule
from facegate.errors import StorageError
from facegate.storage import migrate
from facegate.storage.db import create_engine_for, ensure_private_dir, session_scope, writer
from facegate.storage.files import CropStore, EncodedCrop, relative_path_for
from facegate.storage.records import (
    AccessRecord,
    DoorState,
    GalleryImage,
    GalleryMatrix,
    JobRun,
    ModelVersion,
    NewGalleryImage,
    OutboxEvent,
    OutboxMessage,
    User,
)
from facegate.storage.schema import (
    AccessLogRow,
    DoorStateRow,
    EmbeddingRow,
    GalleryImageRow,
    JobRunRow,
    ModelVersionRow,
    OutboxRow,
    UserRow,
    utcnow,
)

logger = logging.getLogger(__name__)


class UnknownUserError(StorageError):
    """No user has the given name or id."""


class _Keep:
    """Sentinel type: leave a field unchanged."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


R = TypeVar("R")


@functools.cache
def _field_names(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record_type))


def _record(record_type: type[R], row: object, **values: Any) -> R:
    """A record from a row: each field not in ``values`` is the row's attribute of that name."""
    for name in _field_names(record_type):
        if name not in values:
            values[name] = getattr(row, name)
    return record_type(**values)


def _user(row: UserRow, image_count: int = 0) -> User:
    return _record(User, row, image_count=image_count)


def _image(row: GalleryImageRow) -> GalleryImage:
    points = row.landmarks
    landmarks = None if points is None else tuple((float(x), float(y)) for x, y in points)
    return _record(GalleryImage, row, landmarks=landmarks)


def _model(row: ModelVersionRow) -> ModelVersion:
    return _record(ModelVersion, row, metrics=dict(row.metrics or {}))


def _access(row: AccessLogRow) -> AccessRecord:
    return _record(AccessRecord, row)


def _outbox(row: OutboxRow) -> OutboxEvent:
    return _record(OutboxEvent, row, payload=bytes(row.payload))


def _door(row: DoorStateRow) -> DoorState:
    return _record(DoorState, row, data=dict(row.data or {}))


def _job(row: JobRunRow) -> JobRun:
    return _record(JobRun, row)


def landmarks_json(landmarks: np.ndarray | None) -> list[list[float]] | None:
    """(K, 2) landmark pixels as a JSON-ready [[x, y], ...] (None stays None); K >= 2."""
    if landmarks is None:
        return None
    array = np.asarray(landmarks, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < 2 or not np.isfinite(array).all():
        raise StorageError(f"landmarks must be (K >= 2, 2) finite pixels, got {array.shape}")
    return [[float(x), float(y)] for x, y in array]


def vector_bytes(vector: np.ndarray) -> tuple[bytes, int]:
    """A (D,) embedding as little-endian float32 bytes and its dimension D."""
    array = np.ascontiguousarray(np.asarray(vector, dtype="<f4").reshape(-1))
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise StorageError("an embedding must be a non-empty vector of finite numbers")
    return array.tobytes(), int(array.size)


def vector_from_bytes(data: bytes, dim: int) -> np.ndarray:
    """Decode ``vector_bytes`` output back to a (D,) float32 array."""
    array = np.frombuffer(bytes(data), dtype="<f4").astype(np.float32)
    if array.size != dim:
        raise StorageError(f"stored embedding has {array.size} values, expected {dim}")
    return array


def _checked_name(raw: str) -> str:
    try:
        return clean_name(raw)
    except ValueError as err:
        raise StorageError(f"invalid name: {err}") from err


def _checked_schedule(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    try:
        return str(parse_schedule(raw))
    except ValueError as err:
        raise StorageError(f"invalid schedule: {err}") from err


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise StorageError(f"{what} must be timezone-aware")
    return value


class Registry:
    """The repository over one database and one data directory (crops live there)."""

    def __init__(self, engine: Engine, data_dir: Path) -> None:
        """Wrap an engine whose schema is already at head; crops go under ``data_dir``."""
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.crops = CropStore(self.data_dir)
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(writer(engine), expire_on_commit=False)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def probe_write(self) -> None:
        """Prove the database takes writes (for ``facegate doctor``): insert a row inside a
        write transaction, then roll it back; StorageError when read-only, locked or denied."""
        with self._session(write=True) as session:
            session.add(JobRunRow(job="doctor_probe", started_at=utcnow(), outcome="running"))
            session.flush()
            session.rollback()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        try:
            with session_scope(self._writes if write else self._reads) as session:
                yield session
        except IntegrityError as err:
            raise StorageError(f"registry constraint violated: {err.orig}") from err
        except SQLAlchemyError as err:
            raise StorageError(f"registry error: {err}") from err

    # -- users ---------------------------------------------------------------------------

    @staticmethod
    def _user_row(session: Session, name: str) -> UserRow:
        row = session.scalar(select(UserRow).where(UserRow.name == _checked_name(name)))
        if row is None:
            raise UnknownUserError(f"no user named {name.strip()!r}")
        return row

    @staticmethod
    def _count(session: Session, user_id: int) -> int:
        query = select(func.count()).where(GalleryImageRow.user_id == user_id)
        return int(session.scalar(query) or 0)

    def create_user(
        self,
        name: str,
        display_name: str | None = None,
        *,
        active: bool = True,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        schedule: str | None = None,
        gallery_consent: bool = False,
    ) -> User:
        """Add a user with an empty gallery; raise StorageError when the name is taken."""
        return self.create_user_with_gallery(
            name,
            [],
            model_sha256="",
            display_name=display_name,
            active=active,
            valid_from=valid_from,
            valid_until=valid_until,
            schedule=schedule,
            gallery_consent=gallery_consent,
        )

    def get_user(self, name: str) -> User:
        """The user with this name; raise UnknownUserError when there is none."""
        with self._session() as session:
            row = self._user_row(session, name)
            return _user(row, self._count(session, row.id))

    def find_user(self, name: str) -> User | None:
        """The user with this name, or None."""
        try:
            return self.get_user(name)
        except UnknownUserError:
            return None

    def user_by_id(self, user_id: int) -> User:
        """The user with this id; raise UnknownUserError when there is none."""
        with self._session() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                raise UnknownUserError(f"no user with id {user_id}")
            return _user(row, self._count(session, row.id))

    def list_users(self, active_only: bool = False) -> list[User]:
        """Every user, by name, with their gallery sizes."""
        with self._session() as session:
            counts = dict(
                session.execute(
                    select(GalleryImageRow.user_id, func.count()).group_by(GalleryImageRow.user_id)
                ).all()
            )
            query = select(UserRow).order_by(UserRow.name)
            if active_only:
                query = query.where(UserRow.active.is_(True))
            return [_user(row, int(counts.get(row.id, 0))) for row in session.scalars(query)]

    def update_user(
        self,
        name: str,
        *,
        display_name: str | _Keep = KEEP,
        active: bool | _Keep = KEEP,
        valid_from: datetime | _Keep | None = KEEP,
        valid_until: datetime | _Keep | None = KEEP,
        schedule: str | _Keep | None = KEEP,
        gallery_consent: bool | _Keep = KEEP,
    ) -> User:
        """Change the given fields (``KEEP`` leaves one as it is; None clears an optional one)."""
        changes: dict[str, Any] = {}
        if not isinstance(display_name, _Keep):
            changes["display_name"] = _checked_name(display_name)
        if not isinstance(active, _Keep):
            changes["active"] = bool(active)
        if not isinstance(valid_from, _Keep):
            changes["valid_from"] = _aware(valid_from, "valid_from")
        if not isinstance(valid_until, _Keep):
            changes["valid_until"] = _aware(valid_until, "valid_until")
        if not isinstance(schedule, _Keep):
            changes["schedule"] = _checked_schedule(schedule)
        if not isinstance(gallery_consent, _Keep):
            changes["gallery_consent"] = bool(gallery_consent)
        with self._session(write=True) as session:
            row = self._user_row(session, name)
            start = changes.get("valid_from", row.valid_from)
            end = changes.get("valid_until", row.valid_until)
            if start is not None and end is not None and end <= start:
                raise StorageError("valid_until must be after valid_from")
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.flush()
            return _user(row, self._count(session, row.id))

    def rename_user(self, name: str, new_name: str) -> User:
        """Give a user a new unique name (the display name follows when it was the old name)."""
        new = _checked_name(new_name)
        with self._session(write=True) as session:
            row = self._user_row(session, name)
            if row.name != new and session.scalar(select(UserRow.id).where(UserRow.name == new)):
                raise StorageError(f"a user named {new!r} already exists")
            if row.display_name == row.name:
                row.display_name = new
            row.name = new
            row.updated_at = utcnow()
            session.flush()
            return _user(row, self._count(session, row.id))

    def delete_user(self, name: str) -> int:
        """Delete a user with their images, embeddings and crop files; return files removed.

        Their access-log rows stay (for audit) with the user link cleared.
        """
        with self._session(write=True) as session:
            row = self._user_row(session, name)
            paths = list(
                session.scalars(
                    select(GalleryImageRow.path).where(GalleryImageRow.user_id == row.id)
                )
            )
            session.execute(delete(UserRow).where(UserRow.id == row.id))
        logger.info("deleted user %d and %d gallery images", row.id, len(paths))
        return self._remove_unreferenced(paths)

    # -- galleries -----------------------------------------------------------------------

    def _write_files(self, images: Sequence[NewGalleryImage]) -> list[str]:
        """Write the crop files; return the store paths this call created."""
        created: list[str] = []
        try:
            for image in images:
                crop = EncodedCrop(image.sha256, image.png, relative_path_for(image.sha256))
                if self.crops.write(crop):
                    created.append(crop.relative_path)
        except BaseException:
            self._remove_unreferenced(created)
            raise
        return created

    def _remove_unreferenced(self, paths: Sequence[str]) -> int:
        """Delete those crop files that no gallery row refers to; return how many went."""
        if not paths:
            return 0
        try:
            with self._session() as session:
                query = select(GalleryImageRow.path).where(GalleryImageRow.path.in_(paths))
                used = set(session.scalars(query))
        except StorageError as err:
            # Never mask the caller's error: the orphan sweep will get these files later.
            logger.warning("cannot check crop references (%s); leaving the files for now", err)
            return 0
        removed = 0
        for path in set(paths) - used:
            try:
                removed += self.crops.delete(path)
            except StorageError as err:
                logger.warning("%s; the next orphan sweep will retry", err)
        return removed

    @staticmethod
    def _add_images(
        session: Session, user_id: int, images: Sequence[NewGalleryImage], model_sha256: str
    ) -> list[GalleryImageRow]:
        rows = []
        now = utcnow()
        for image in images:
            row = GalleryImageRow(
                user_id=user_id,
                sha256=image.sha256,
                path=relative_path_for(image.sha256),
                quality=float(image.quality),
                source=image.source[:256],
                added_at=now,
                landmarks=landmarks_json(image.landmarks),
            )
            data, dim = vector_bytes(image.embedding)
            row.embeddings.append(EmbeddingRow(model_sha256=model_sha256, dim=dim, vector=data))
            session.add(row)
            rows.append(row)
        session.flush()
        return rows

    def create_user_with_gallery(
        self,
        name: str,
        images: Sequence[NewGalleryImage],
        model_sha256: str,
        display_name: str | None = None,
        **fields: Any,
    ) -> User:
        """Create a user, their gallery images and embeddings in one transaction.

        The crop files are written first and removed again if the transaction fails, so a
        failure (or a crash, with the orphan sweep) leaves no trace of the user.
        ``fields`` are the optional User fields of ``create_user``.
        """
        clean = _checked_name(name)
        display = _checked_name(display_name) if display_name else clean
        if images and not model_sha256:
            raise StorageError("gallery embeddings need the model's sha256")
        schedule = _checked_schedule(fields.pop("schedule", None))
        valid_from = _aware(fields.pop("valid_from", None), "valid_from")
        valid_until = _aware(fields.pop("valid_until", None), "valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            raise StorageError("valid_until must be after valid_from")
        created = self._write_files(images)
        try:
            with self._session(write=True) as session:
                if session.scalar(select(UserRow.id).where(UserRow.name == clean)) is not None:
                    raise StorageError(f"a user named {clean!r} already exists")
                now = utcnow()
                row = UserRow(
                    name=clean,
                    display_name=display,
                    active=bool(fields.pop("active", True)),
                    valid_from=valid_from,
                    valid_until=valid_until,
                    schedule=schedule,
                    gallery_consent=bool(fields.pop("gallery_consent", False)),
                    created_at=now,
                    updated_at=now,
                )
                if fields:
                    raise StorageError(f"unknown user fields: {', '.join(sorted(fields))}")
                session.add(row)
                session.flush()
                self._add_images(session, row.id, images, model_sha256)
                user = _user(row, len(images))
        except BaseException:
            self._remove_unreferenced(created)
            raise
        logger.info("created user %d with %d gallery images", user.id, len(images))
        return user

    def add_gallery_images(
        self, name: str, images: Sequence[NewGalleryImage], model_sha256: str
    ) -> list[GalleryImage]:
        """Add images (with embeddings) to a user's gallery in one transaction.

        Images whose content the gallery already holds are skipped.
        """
        if not model_sha256:
            raise StorageError("gallery embeddings need the model's sha256")
        created = self._write_files(images)
        try:
            with self._session(write=True) as session:
                user = self._user_row(session, name)
                have = set(
                    session.scalars(
                        select(GalleryImageRow.sha256).where(GalleryImageRow.user_id == user.id)
                    )
                )
                fresh: list[NewGalleryImage] = []
                for image in images:
                    if image.sha256 not in have:
                        have.add(image.sha256)
                        fresh.append(image)
                rows = self._add_images(session, user.id, fresh, model_sha256)
                user.updated_at = utcnow()
                added = [_image(r) for r in rows]
        except BaseException:
            self._remove_unreferenced(created)
            raise
        self._remove_unreferenced(created)  # files of skipped duplicates, if new
        return added

    def gallery(self, name: str) -> list[GalleryImage]:
        """A user's gallery images, oldest first."""
        with self._session() as session:
            user = self._user_row(session, name)
            query = (
                select(GalleryImageRow)
                .where(GalleryImageRow.user_id == user.id)
                .order_by(GalleryImageRow.id)
            )
            return [_image(r) for r in session.scalars(query)]

    def all_gallery_images(self) -> list[GalleryImage]:
        """Every gallery image of every user, by id."""
        with self._session() as session:
            query = select(GalleryImageRow).order_by(GalleryImageRow.id)
            return [_image(r) for r in session.scalars(query)]

    def remove_gallery_image(self, name: str, image_id: int) -> GalleryImage:
        """Remove one image (and its embeddings and, when unshared, its file) from a gallery."""
        with self._session(write=True) as session:
            user = self._user_row(session, name)
            row = session.get(GalleryImageRow, image_id)
            if row is None or row.user_id != user.id:
                raise StorageError(f"user {user.name!r} has no gallery image {image_id}")
            image = _image(row)
            session.execute(delete(GalleryImageRow).where(GalleryImageRow.id == image_id))
            user.updated_at = utcnow()
        self._remove_unreferenced([image.path])
        return image

    def remove_images(self, image_ids: Sequence[int]) -> int:
        """Remove gallery images by id (any users), their embeddings and unshared files."""
        if not image_ids:
            return 0
        with self._session(write=True) as session:
            rows = list(
                session.scalars(
                    select(GalleryImageRow).where(GalleryImageRow.id.in_(list(image_ids)))
                )
            )
            paths = [r.path for r in rows]
            now = utcnow()
            session.execute(
                update(UserRow)
                .where(UserRow.id.in_({r.user_id for r in rows}))
                .values(updated_at=now)
            )
            session.execute(delete(GalleryImageRow).where(GalleryImageRow.id.in_(list(image_ids))))
        self._remove_unreferenced(paths)
        return len(rows)

    def gallery_stamp(self, model_sha256: str) -> tuple[int, str, int, int]:
        """A cheap value that changes whenever the users or one model's gallery embeddings do
        (users count, latest user change, embeddings count, newest embedding id): poll it to
        know when a cached gallery matrix is stale."""
        with self._session() as session:
            users, changed = session.execute(
                select(func.count(UserRow.id), func.max(UserRow.updated_at))
            ).one()
            count, newest = session.execute(
                select(func.count(EmbeddingRow.id), func.max(EmbeddingRow.id)).where(
                    EmbeddingRow.model_sha256 == model_sha256
                )
            ).one()
        return int(users or 0), str(changed or ""), int(count or 0), int(newest or 0)

    def revision(self) -> tuple:
        """A cheap value that changes whenever users, gallery images, embeddings or the active
        model do, whichever model's: compared before and after a command to know whether it
        changed anything a door serves."""
        with self._session() as session:
            users = session.execute(
                select(func.count(UserRow.id), func.max(UserRow.updated_at))
            ).one()
            images = session.execute(
                select(func.count(GalleryImageRow.id), func.max(GalleryImageRow.id))
            ).one()
            embeddings = session.execute(
                select(func.count(EmbeddingRow.id), func.max(EmbeddingRow.id))
            ).one()
            active = session.execute(
                select(ModelVersionRow.sha256).where(ModelVersionRow.active.is_(True))
            ).scalar_one_or_none()
        return (*users, *images, *embeddings, active)

    def read_crop(self, image: GalleryImage) -> np.ndarray:
        """The stored (S, S, 3) uint8 RGB image of a gallery image: a canonical chip with
        ``image.landmarks``, or a legacy crop aligned for one model (see ``GalleryImage``);
        ``facegate.enrollment.embedding.model_crop`` makes either a given model's crop."""
        return self.crops.read(image.path)

    def sweep_orphan_files(self, min_age_s: float = 3600.0) -> list[str]:
        """Delete crop files no gallery row refers to, older than ``min_age_s`` seconds.

        The age guard spares the files of an enrollment that is about to commit in another
        process. Returns the store paths removed.
        """
        files = list(self.crops.iter_files())
        if not files:
            return []
        with self._session() as session:
            used = set(session.scalars(select(GalleryImageRow.path)))
        cutoff = _time.time() - min_age_s
        removed = []
        for path, mtime in files:
            if path not in used and mtime <= cutoff:
                try:
                    if self.crops.delete(path):
                        removed.append(path)
                except StorageError as err:
                    logger.warning("orphan sweep: %s", err)
        if removed:
            logger.info("removed %d orphan crop files", len(removed))
        return removed

    # -- embeddings ----------------------------------------------------------------------

    def put_embeddings(self, model_sha256: str, vectors: Mapping[int, np.ndarray]) -> int:
        """Store (or replace) embeddings of gallery images by one model; return how many."""
        if not model_sha256:
            raise StorageError("embeddings need the model's sha256")
        encoded = {int(k): vector_bytes(v) for k, v in vectors.items()}
        with self._session(write=True) as session:
            if encoded:
                session.execute(
                    delete(EmbeddingRow).where(
                        EmbeddingRow.model_sha256 == model_sha256,
                        EmbeddingRow.image_id.in_(list(encoded)),
                    )
                )
            for image_id, (data, dim) in encoded.items():
                session.add(
                    EmbeddingRow(image_id=image_id, model_sha256=model_sha256, dim=dim, vector=data)
                )
        return len(encoded)

    def get_embeddings(
        self, model_sha256: str, image_ids: Sequence[int] | None = None
    ) -> dict[int, np.ndarray]:
        """Embeddings of one model by gallery image id ((D,) float32 each)."""
        with self._session() as session:
            query = select(EmbeddingRow).where(EmbeddingRow.model_sha256 == model_sha256)
            if image_ids is not None:
                query = query.where(EmbeddingRow.image_id.in_(list(image_ids)))
            return {r.image_id: vector_from_bytes(r.vector, r.dim) for r in session.scalars(query)}

    def delete_embeddings(self, model_sha256: str) -> int:
        """Drop every embedding of one model; return how many rows went."""
        with self._session(write=True) as session:
            result = session.execute(
                delete(EmbeddingRow).where(EmbeddingRow.model_sha256 == model_sha256)
            )
            return int(result.rowcount or 0)

    def images_without_embedding(self, model_sha256: str) -> list[GalleryImage]:
        """Gallery images that have no embedding from this model yet."""
        with self._session() as session:
            done = select(EmbeddingRow.image_id).where(EmbeddingRow.model_sha256 == model_sha256)
            query = (
                select(GalleryImageRow)
                .where(GalleryImageRow.id.not_in(done))
                .order_by(GalleryImageRow.id)
            )
            return [_image(r) for r in session.scalars(query)]

    def gallery_matrix(self, model_sha256: str, active_only: bool = True) -> GalleryMatrix:
        """All (by default: active) users' gallery embeddings of one model as one matrix."""
        # Plain columns, not ORM rows: this runs on every gallery reload of the daemon.
        query = (
            select(
                GalleryImageRow.user_id, GalleryImageRow.id, EmbeddingRow.dim, EmbeddingRow.vector
            )
            .join(EmbeddingRow, EmbeddingRow.image_id == GalleryImageRow.id)
            .join(UserRow, UserRow.id == GalleryImageRow.user_id)
            .where(EmbeddingRow.model_sha256 == model_sha256)
            .order_by(GalleryImageRow.user_id, GalleryImageRow.id)
        )
        if active_only:
            query = query.where(UserRow.active.is_(True))
        with self._session() as session:
            rows = session.execute(query).all()
            owners = {user_id for user_id, _, _, _ in rows}
            user_rows = (
                session.scalars(select(UserRow).where(UserRow.id.in_(owners))) if owners else []
            )
            user_ids = np.array([r[0] for r in rows], dtype=np.int64)
            counts = dict(zip(*np.unique(user_ids, return_counts=True), strict=True))
            users = {u.id: _user(u, int(counts[u.id])) for u in user_rows}
        dims = {dim for _, _, dim, _ in rows}
        if len(dims) > 1:
            raise StorageError(f"model {model_sha256[:12]} has embeddings of several sizes")
        dim = dims.pop() if dims else 0
        blob = b"".join(bytes(r[3]) for r in rows)
        if len(blob) != 4 * dim * len(rows):
            raise StorageError(f"model {model_sha256[:12]} has malformed stored embeddings")
        vectors = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(len(rows), dim)
        return GalleryMatrix(
            model_sha256=model_sha256,
            vectors=vectors,
            user_ids=user_ids,
            image_ids=np.array([r[1] for r in rows], dtype=np.int64),
            users=users,
        )

    # -- model versions ------------------------------------------------------------------

    def register_model(
        self,
        sha256: str,
        name: str,
        path: str | Path,
        metrics: Mapping[str, Any] | None = None,
        *,
        status: str = "candidate",
        why: str = "",
    ) -> ModelVersion:
        """Record a model version (idempotent on sha256: an existing one is returned as is)."""
        with self._session() as session:  # a known model needs no write lock
            known = session.scalar(select(ModelVersionRow).where(ModelVersionRow.sha256 == sha256))
            if known is not None:
                return _model(known)
        with self._session(write=True) as session:
            row = session.scalar(select(ModelVersionRow).where(ModelVersionRow.sha256 == sha256))
            if row is None:
                row = ModelVersionRow(
                    sha256=sha256,
                    name=name,
                    path=str(path),
                    metrics=dict(metrics or {}),
                    active=False,
                    created_at=utcnow(),
                    status=status,
                    why=why,
                )
                session.add(row)
                session.flush()
            return _model(row)

    def _model_row(self, session: Session, sha256: str) -> ModelVersionRow:
        row = session.scalar(select(ModelVersionRow).where(ModelVersionRow.sha256 == sha256))
        if row is None:
            matches = list(
                session.scalars(
                    select(ModelVersionRow).where(ModelVersionRow.sha256.startswith(sha256))
                )
            )
            if len(sha256) < 6 or len(matches) != 1:
                raise StorageError(f"no single model version matches {sha256!r}")
            row = matches[0]
        return row

    @staticmethod
    def _switch_active(
        session: Session, row: ModelVersionRow, old_status: str, old_why: str
    ) -> None:
        current = session.scalar(select(ModelVersionRow).where(ModelVersionRow.active.is_(True)))
        if current is not None and current.id != row.id:
            current.active = False
            current.status = old_status
            current.why = old_why
        # Deactivate first: the partial unique index allows one active row at any moment.
        session.flush()
        row.active = True
        row.status = "active"

    def activate_model(self, sha256: str, why: str = "activated") -> ModelVersion:
        """Make one model version the only active one (the previous one becomes retired)."""
        with self._session(write=True) as session:
            row = self._model_row(session, sha256)
            if not row.active:
                self._switch_active(session, row, "retired", f"replaced by {row.sha256[:12]}")
                row.promoted_at = utcnow()
            row.why = why
            session.flush()
            return _model(row)

    def rollback_model(self, why: str = "rolled back") -> ModelVersion:
        """Re-activate the most recently promoted earlier model; the current one is marked
        rolled_back (and skipped by later rollbacks, which walk further back)."""
        with self._session(write=True) as session:
            current = session.scalar(
                select(ModelVersionRow).where(ModelVersionRow.active.is_(True))
            )
            query = (
                select(ModelVersionRow)
                .where(
                    ModelVersionRow.active.is_(False),
                    ModelVersionRow.promoted_at.is_not(None),
                    ModelVersionRow.status != "rolled_back",
                )
                .order_by(ModelVersionRow.promoted_at.desc(), ModelVersionRow.id.desc())
            )
            if current is not None and current.promoted_at is not None:
                query = query.where(ModelVersionRow.promoted_at <= current.promoted_at)
            previous = session.scalars(query).first()
            if previous is None:
                raise StorageError("no earlier model version to roll back to")
            self._switch_active(session, previous, "rolled_back", why)
            previous.why = f"restored by rollback: {why}"
            session.flush()
            return _model(previous)

    def reject_model(self, sha256: str, why: str) -> ModelVersion:
        """Mark a candidate as rejected with the reason (an active model cannot be)."""
        with self._session(write=True) as session:
            row = self._model_row(session, sha256)
            if row.active:
                raise StorageError("the active model cannot be rejected; activate another first")
            row.status = "rejected"
            row.why = why
            session.flush()
            return _model(row)

    def active_model(self) -> ModelVersion | None:
        """The active model version, or None when none was ever activated."""
        with self._session() as session:
            row = session.scalar(select(ModelVersionRow).where(ModelVersionRow.active.is_(True)))
            return _model(row) if row else None

    def get_model(self, sha256: str) -> ModelVersion:
        """A model version by sha256 (or a unique prefix of at least 6 characters)."""
        with self._session() as session:
            return _model(self._model_row(session, sha256))

    def list_models(self) -> list[ModelVersion]:
        """Every model version, oldest first."""
        with self._session() as session:
            query = select(ModelVersionRow).order_by(ModelVersionRow.id)
            return [_model(r) for r in session.scalars(query)]

    # -- access log and outbox -----------------------------------------------------------

    def log_access(
        self,
        *,
        door: str,
        trigger: str,
        decision: str,
        reason: str,
        decision_id: str,
        time: datetime | None = None,
        user_id: int | None = None,
        candidate: str | None = None,
        score: float | None = None,
        latency_ms: float | None = None,
        frames: int = 0,
        capture_path: str | None = None,
        events: Sequence[OutboxMessage] = (),
    ) -> AccessRecord:
        """Append a decision to the access log, and queue ``events`` in the same transaction."""
        with self._session(write=True) as session:
            row = AccessLogRow(
                time=_aware(time, "time") or utcnow(),
                door=door,
                trigger=trigger,
                user_id=user_id,
                candidate=candidate,
                score=None if score is None else float(score),
                decision=decision,
                reason=reason,
                latency_ms=None if latency_ms is None else float(latency_ms),
                decision_id=decision_id,
                frames=int(frames),
                capture_path=capture_path,
            )
            session.add(row)
            self._enqueue(session, events)
            session.flush()
            return _access(row)

    def access_log(
        self,
        *,
        limit: int = 100,
        door: str | None = None,
        user_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        decision: str | None = None,
    ) -> list[AccessRecord]:
        """Access records, newest first, filtered by the given fields (``until`` exclusive)."""
        query = select(AccessLogRow).order_by(AccessLogRow.time.desc(), AccessLogRow.id.desc())
        if door is not None:
            query = query.where(AccessLogRow.door == door)
        if user_id is not None:
            query = query.where(AccessLogRow.user_id == user_id)
        if since is not None:
            query = query.where(AccessLogRow.time >= _aware(since, "since"))
        if until is not None:
            query = query.where(AccessLogRow.time < _aware(until, "until"))
        if decision is not None:
            query = query.where(AccessLogRow.decision == decision)
        with self._session() as session:
            return [_access(r) for r in session.scalars(query.limit(limit))]

    def delete_access_before(self, cutoff: datetime) -> int:
        """Delete access records older than ``cutoff``; return how many."""
        with self._session(write=True) as session:
            result = session.execute(
                delete(AccessLogRow).where(AccessLogRow.time < _aware(cutoff, "cutoff"))
            )
            return int(result.rowcount or 0)

    def clear_captures_before(self, cutoff: datetime) -> list[str]:
        """Unlink capture paths of records older than ``cutoff``; return the paths to delete."""
        with self._session(write=True) as session:
            where = (
                AccessLogRow.time < _aware(cutoff, "cutoff"),
                AccessLogRow.capture_path.is_not(None),
            )
            paths = [p for p in session.scalars(select(AccessLogRow.capture_path).where(*where))]
            session.execute(update(AccessLogRow).where(*where).values(capture_path=None))
            return [p for p in paths if p]

    @staticmethod
    def _enqueue(session: Session, events: Sequence[OutboxMessage]) -> list[OutboxRow]:
        rows = []
        now = utcnow()
        for event in events:
            payload = event.payload.encode() if isinstance(event.payload, str) else event.payload
            if event.qos not in (0, 1, 2):
                raise StorageError(f"MQTT QoS must be 0, 1 or 2, not {event.qos}")
            row = OutboxRow(
                topic=event.topic,
                payload=bytes(payload),
                qos=event.qos,
                retain=event.retain,
                created_at=now,
                attempts=0,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        return rows

    def enqueue(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> OutboxEvent:
        """Queue one message for the broker."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._session(write=True) as session:
            (row,) = self._enqueue(session, [OutboxMessage(topic, data, qos, retain)])
            return _outbox(row)

    def peek_outbox(self, limit: int = 100) -> list[OutboxEvent]:
        """The oldest queued messages, in delivery (id) order."""
        with self._session() as session:
            query = select(OutboxRow).order_by(OutboxRow.id).limit(limit)
            return [_outbox(r) for r in session.scalars(query)]

    def ack_outbox(self, ids: Sequence[int]) -> int:
        """Remove delivered messages; return how many were removed."""
        if not ids:
            return 0
        with self._session(write=True) as session:
            result = session.execute(delete(OutboxRow).where(OutboxRow.id.in_(list(ids))))
            return int(result.rowcount or 0)

    def mark_outbox_attempt(self, ids: Sequence[int]) -> None:
        """Count one more delivery attempt for these messages."""
        if not ids:
            return
        with self._session(write=True) as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(list(ids)))
                .values(attempts=OutboxRow.attempts + 1)
            )

    def outbox_depth(self) -> int:
        """How many messages wait for delivery."""
        with self._session() as session:
            return int(session.scalar(select(func.count()).select_from(OutboxRow)) or 0)

    # -- door state and job runs ---------------------------------------------------------

    def get_door_state(self, door: str) -> DoorState:
        """A door's saved state (empty when never saved)."""
        with self._session() as session:
            row = session.get(DoorStateRow, door)
            if row is None:
                return DoorState(door=door, lockout_until=None, data={}, updated_at=None)
            return _door(row)

    def set_door_state(
        self, door: str, lockout_until: datetime | None, data: Mapping[str, Any] | None = None
    ) -> DoorState:
        """Save a door's state (lockout end, JSON-serialisable values), replacing the old."""
        with self._session(write=True) as session:
            row = session.get(DoorStateRow, door)
            if row is None:
                row = DoorStateRow(door=door, data={}, updated_at=utcnow())
                session.add(row)
            row.lockout_until = _aware(lockout_until, "lockout_until")
            row.data = dict(data or {})
            row.updated_at = utcnow()
            session.flush()
            return _door(row)

    def start_job(self, job: str) -> JobRun:
        """Record that a job run started; finish it with ``finish_job``."""
        with self._session(write=True) as session:
            row = JobRunRow(job=job, started_at=utcnow(), outcome="running", message="")
            session.add(row)
            session.flush()
            return _job(row)

    def finish_job(self, run_id: int, outcome: str, message: str = "") -> JobRun:
        """Record how a job run ended (``ok``, ``failed``, ``skipped``)."""
        with self._session(write=True) as session:
            row = session.get(JobRunRow, run_id)
            if row is None:
                raise StorageError(f"no job run {run_id}")
            row.finished_at = utcnow()
            row.outcome = outcome
            row.message = message
            session.flush()
            return _job(row)

    def job_runs(self, job: str | None = None, limit: int = 50) -> list[JobRun]:
        """Job runs, newest first."""
        query = select(JobRunRow).order_by(JobRunRow.started_at.desc(), JobRunRow.id.desc())
        if job is not None:
            query = query.where(JobRunRow.job == job)
        with self._session() as session:
            return [_job(r) for r in session.scalars(query.limit(limit))]

    def last_job_runs(self) -> dict[str, JobRun]:
        """The latest run of each job, by job name."""
        with self._session() as session:
            latest = (
                select(JobRunRow.job, func.max(JobRunRow.id).label("last_id"))
                .group_by(JobRunRow.job)
                .subquery()
            )
            query = select(JobRunRow).join(latest, JobRunRow.id == latest.c.last_id)
            return {r.job: _job(r) for r in session.scalars(query)}


def open_registry(config: StorageConfig, sweep_min_age_s: float = 3600.0) -> Registry:
    """Open (creating and migrating as needed) the configured registry; sweep orphan crops."""
    ensure_private_dir(config.data_dir)
    engine = create_engine_for(config.resolved_url, config.busy_timeout_s)
    try:
        migrate.upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    registry = Registry(engine, config.data_dir)
    try:
        registry.sweep_orphan_files(sweep_min_age_s)
    except StorageError as err:
        logger.warning("orphan crop sweep failed: %s", err)
    return registry
