"""ORM tables."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A moment in UTC, always timezone-aware in Python.

    SQLite keeps no offset: it hands back naive datetimes, so a read row and a just-created one would
    serialize differently (with and without "Z"). Stored as UTC, read back as UTC. The column type is still
    DateTime(timezone=True), so the schema (and migrations compared with it) does not change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)  # SQLite would drop any other offset without converting
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


# SQLite would otherwise give a deleted row's id to the next one (max(id)+1): ids are never reused.
# Every table with an integer id carries it; tests/test_migrations.py checks that, and migration 0002.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class User(Base):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalized (NFKC, case-folded): "Alice" and "alice" are one account.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UserSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's random value is stored."""

    __tablename__ = "user_sessions"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A script's credential, shown once; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, to tell tokens apart in a list without revealing them.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # "viewer" | "editor"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # NULL: made while login was off (or before accounts existed); the first admin account claims it.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    # The public read-only page's secret (TM's shareable link); NULL when not shared.
    share_token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True, nullable=True)
    backbone: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # use_alter: projects and models point at each other.
    current_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("trained_models.id", ondelete="SET NULL", use_alter=True), nullable=True
    )

    classes: Mapped[list[ImageClass]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True, order_by="ImageClass.id"
    )
    models: Mapped[list[TrainedModel]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="TrainedModel.project_id",
    )
    current_model: Mapped[TrainedModel | None] = relationship(foreign_keys=[current_model_id], post_update=True)
    # "Start from another project's model": its fine-tuned backbone, by content digest.
    base_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("trained_models.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    base_digest: Mapped[str | None] = mapped_column(ForeignKey("backbone_weights.digest"), nullable=True)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    members: Mapped[list[ProjectMember]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                        order_by="ProjectMember.id")

    @property
    def features(self) -> str:
        """Which network computes this project's embeddings (the embedding cache key)."""
        return f"{self.backbone}@{self.base_digest}" if self.base_digest else self.backbone


class ImageClass(Base):
    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("project_id", "name"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Kept for the class's life (app.colors); NULL only in a database no migration has touched.
    color: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # "Use in training": off leaves the class and its photos in place but out of the next model.
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="classes")
    samples: Mapped[list[Sample]] = relationship(
        back_populates="image_class", cascade="all, delete-orphan", passive_deletes=True, order_by="Sample.id"
    )


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    # Server-made storage key; the uploader's file name is kept only for display.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    original_format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="upload")
    # Frames recorded in one webcam press share a burst; they stay together in the validation split.
    burst_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    image_class: Mapped[ImageClass] = relationship(back_populates="samples")


class Embedding(Base):
    """Cached backbone features of one sample, for one backbone and preprocessing version."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("sample_id", "backbone", "version"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    backbone: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("trained_models.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A worker process holds a running job while it renews the lease (app.jobs); None with the thread worker.
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class BackboneWeights(Base):
    """A fine-tuned backbone, stored once and shared by every model and project that uses it."""

    __tablename__ = "backbone_weights"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    backbone: Mapped[str] = mapped_column(String(100))
    state: Mapped[bytes] = mapped_column(LargeBinary)  # torch.save of the state dict
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrainedModel(Base):
    __tablename__ = "trained_models"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    backbone: Mapped[str] = mapped_column(String(100))
    # The backbone's registry name, or "name@digest" for a fine-tuned one (see BackboneWeights).
    features: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list] = mapped_column(JSON)
    class_ids: Mapped[list] = mapped_column(JSON)
    format_version: Mapped[int] = mapped_column(Integer)
    # torch.save of a plain dict (see app.ml.checkpoint): the head, and the backbone when fine-tuned.
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    # "None of these": below this similarity to the training data the answer is "unknown".
    unknown_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    unknown_threshold_calibrated: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="models", foreign_keys=[project_id])


class TrashEntry(Base):
    """A deleted photo, or a class with its photos, restorable until expires_at (undo).

    payload holds the deleted rows as JSON (restored with their own ids, so a model's class_ids and a page's
    links still name them); keys are the photo files kept in storage meanwhile. Purged once expired.
    """

    __tablename__ = "trash"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "samples" | "class"
    payload: Mapped[dict] = mapped_column(JSON)
    keys: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Change(Base):
    """One change to a project (its classes, photos, jobs, models, name, members), in order: open pages ask
    for rows after the last id they saw (app.changes). No foreign key: a deleted project's pages must hear it."""

    __tablename__ = "changes"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    topic: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
