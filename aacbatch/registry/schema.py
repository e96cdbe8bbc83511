"""SQLAlchemy 2 table definitions for the registry.

Keys are UUID text so rows can be created on many machines without coordination. There are
no database-level foreign keys: DuckDB implements ``UPDATE`` of a referenced row as
delete+insert and rejects it, which would forbid e.g. marking a run finished once it has
checkpoints. References are plain indexed ``*_id`` columns, kept consistent by
:mod:`aacbatch.registry.store`'s write functions. JSON payloads are stored as text (portable
across DuckDB and PostgreSQL; both parse it with their JSON functions).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, Double, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _id() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def _ref(nullable: bool = False) -> Mapped[str]:
    return mapped_column(String(36), nullable=nullable, index=True)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime, nullable=False, default=utcnow)


class Dataset(Base):
    """One ingested corpus (a Clotho copy, a WavCaps subset, a SynthCaps folder, ...)."""

    __tablename__ = "datasets"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    format: Mapped[str] = mapped_column(String(32), nullable=False)
    source_path: Mapped[str] = mapped_column(Text, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    n_clips: Mapped[int] = mapped_column(Integer, nullable=False)
    n_captions: Mapped[int] = mapped_column(Integer, nullable=False)
    meta_json: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = _created()


class Clip(Base):
    """An audio file of a dataset; ``source_split`` is the split the corpus shipped it in.

    ``source``/``source_id`` name the recording the clip was cut from, where the corpus says
    (``freesound`` + a FreeSound id for Clotho and WavCaps' FreeSound subset, ``youtube`` + a
    YouTube id for AudioCaps and WavCaps' AudioSet_SL subset, ``bbc``/``soundbible`` + the
    entry id): two clips with equal pairs hold the same recording, across datasets.
    ``overlap_lists``: the published overlap lists that name the clip (``;``-joined), kept
    only when a dataset was ingested with ``--keep-overlap``.
    """

    __tablename__ = "clips"
    __table_args__ = (Index(None, "dataset_id", "idx"), Index(None, "source", "source_id"))
    id: Mapped[str] = _id()
    dataset_id: Mapped[str] = mapped_column(String(36), nullable=False)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)  # stable row order inside the dataset
    name: Mapped[str] = mapped_column(Text, nullable=False)
    source_split: Mapped[str] = mapped_column(String(64), nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    duration: Mapped[float] = mapped_column(Double, nullable=False)
    n_frames: Mapped[int] = mapped_column(Integer, nullable=False)  # samples per channel at sample_rate
    sample_rate: Mapped[int] = mapped_column(Integer, nullable=False)
    channels: Mapped[int] = mapped_column(Integer, nullable=False)
    tags: Mapped[str | None] = mapped_column(Text)  # ';'-joined labels, NULL when the corpus has none
    source: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(Text)
    source_start: Mapped[float | None] = mapped_column(Double)  # seconds into the recording (AudioCaps)
    licence: Mapped[str | None] = mapped_column(Text)
    overlap_lists: Mapped[str | None] = mapped_column(Text)


class Caption(Base):
    """One reference caption; queries are keyed by (clip, caption_index), never by text."""

    __tablename__ = "captions"
    __table_args__ = (Index(None, "dataset_id", "idx"),)
    id: Mapped[str] = _id()
    dataset_id: Mapped[str] = mapped_column(String(36), nullable=False)
    clip_id: Mapped[str] = _ref()
    idx: Mapped[int] = mapped_column(Integer, nullable=False)  # stable row order inside the dataset
    caption_index: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)


class SplitMember(Base):
    """Membership of a clip in a named split (source splits and re-splits alike)."""

    __tablename__ = "splits"
    __table_args__ = (Index(None, "dataset_id", "name"),)
    id: Mapped[str] = _id()
    dataset_id: Mapped[str] = mapped_column(String(36), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    clip_id: Mapped[str] = _ref()
    recipe: Mapped[str] = mapped_column(Text, nullable=False)  # how the split was made, e.g. "source"


class FeatureSet(Base):
    """A Zarr feature set computed once from a dataset and a spec."""

    __tablename__ = "feature_sets"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    dataset_id: Mapped[str] = _ref()
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    spec_json: Mapped[str] = mapped_column(Text, nullable=False)
    model_identity: Mapped[str | None] = mapped_column(Text)
    random_weights: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    n_items: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Run(Base):
    """One training (or tagging) run, with its lineage and provenance."""

    __tablename__ = "runs"
    id: Mapped[str] = _id()
    task: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    dataset_id: Mapped[str | None] = _ref(nullable=True)
    parent_run_id: Mapped[str | None] = _ref(nullable=True)
    config_json: Mapped[str] = mapped_column(Text, nullable=False)
    feature_sets_json: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    seed: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)  # why a failed run failed
    random_weights: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    host: Mapped[str | None] = mapped_column(Text)
    git_rev: Mapped[str | None] = mapped_column(String(64))
    seed_group: Mapped[str | None] = mapped_column(String(64), index=True)  # equal for runs differing only in seed
    mixture_id: Mapped[str | None] = _ref(nullable=True)  # the registered mixture it trained on, if named
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    id: Mapped[str] = _id()
    run_id: Mapped[str] = _ref()
    epoch: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    is_best: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created()


class Score(Base):
    """A metric value of a run or a system. ``value`` is NULL exactly when ``reason`` says why."""

    __tablename__ = "scores"
    __table_args__ = (Index(None, "run_id", "split", "metric"),)
    id: Mapped[str] = _id()
    run_id: Mapped[str | None] = mapped_column(String(36))
    system_id: Mapped[str | None] = _ref(nullable=True)
    dataset_id: Mapped[str | None] = _ref(nullable=True)  # the dataset it was computed on
    split: Mapped[str] = mapped_column(String(64), nullable=False)
    metric: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[float | None] = mapped_column(Double)
    reason: Mapped[str | None] = mapped_column(Text)
    epoch: Mapped[int | None] = mapped_column(Integer)
    ci_low: Mapped[float | None] = mapped_column(Double)  # bootstrap interval over clips (final scores)
    ci_high: Mapped[float | None] = mapped_column(Double)
    ci_level: Mapped[float | None] = mapped_column(Double)
    provenance_id: Mapped[str | None] = mapped_column(String(64))  # what computed it (provenance table)
    created_at: Mapped[datetime] = _created()


class ProvenanceRecord(Base):
    """How a score was computed — implementation, versions, file hashes, tokenisation — keyed
    by the hash of the record, so identical computations share one row."""

    __tablename__ = "provenance"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_json: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()


class Prediction(Base):
    """A caption for a clip, or an artifact (e.g. a similarity matrix) for a whole split."""

    __tablename__ = "predictions"
    id: Mapped[str] = _id()
    run_id: Mapped[str | None] = _ref(nullable=True)
    system_id: Mapped[str | None] = _ref(nullable=True)
    dataset_id: Mapped[str | None] = _ref(nullable=True)  # the dataset of the split
    split: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    clip_id: Mapped[str | None] = mapped_column(String(36))
    text: Mapped[str | None] = mapped_column(Text)
    artifact_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class System(Base):
    """An ensemble chosen by an SQL query; rebuilding with the same inputs is a no-op."""

    __tablename__ = "systems"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    dataset_id: Mapped[str | None] = _ref(nullable=True)  # the dataset its members were selected on
    query_text: Mapped[str] = mapped_column(Text, nullable=False)
    params_json: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    warnings: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class TaskRow(Base):
    """The catalog's facts about one task (:mod:`aacbatch.catalog`), for SQL: views join this
    table instead of naming tasks. ``db upgrade`` (and the first use of a registry) fills it."""

    __tablename__ = "tasks"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    family: Mapped[str] = mapped_column(String(32), nullable=False)
    output: Mapped[str] = mapped_column(String(32), nullable=False)
    select_metric: Mapped[str] = mapped_column(String(64), nullable=False)
    tag_loss: Mapped[bool] = mapped_column(Boolean, nullable=False)  # trains with the tag regression term
    image_loss: Mapped[bool] = mapped_column(Boolean, nullable=False)
    encoder: Mapped[bool] = mapped_column(Boolean, nullable=False)
    ensemble: Mapped[bool] = mapped_column(Boolean, nullable=False)


class SystemMember(Base):
    __tablename__ = "system_members"
    __table_args__ = (UniqueConstraint("system_id", "rank"),)
    id: Mapped[str] = _id()
    system_id: Mapped[str] = _ref()
    run_id: Mapped[str] = _ref()
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    weight: Mapped[float] = mapped_column(Double, nullable=False, default=1.0)


class Audit(Base):
    """One acoustic overlap audit (``aacbatch audit overlap``): which datasets, how."""

    __tablename__ = "audits"
    id: Mapped[str] = _id()
    datasets_json: Mapped[str] = mapped_column(Text, nullable=False)  # names, in the order given
    pairs: Mapped[str] = mapped_column(String(16), nullable=False)  # all, within or across
    params_json: Mapped[str] = mapped_column(Text, nullable=False)
    n_clips: Mapped[int] = mapped_column(Integer, nullable=False)
    n_matches: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _created()


class AuditMatch(Base):
    """Two clips that share audio: ``duration`` seconds from ``start_a`` in ``clip_a`` sound
    like those from ``start_b`` in ``clip_b`` (``start_a >= start_b``: ``clip_a`` is the
    longer recording a crop was cut from); ``score`` is the mean texture correlation of the
    shared stretch (1.0: identical), ``specificity`` how much better the texture correlates at
    the matched offset than at nearby shifts of it (see :mod:`aacbatch.audit.verify`)."""

    __tablename__ = "audit_matches"
    id: Mapped[str] = _id()
    audit_id: Mapped[str] = _ref()
    clip_a_id: Mapped[str] = _ref()
    clip_b_id: Mapped[str] = _ref()
    start_a: Mapped[float] = mapped_column(Double, nullable=False)
    start_b: Mapped[float] = mapped_column(Double, nullable=False)
    duration: Mapped[float] = mapped_column(Double, nullable=False)
    score: Mapped[float] = mapped_column(Double, nullable=False)
    specificity: Mapped[float] = mapped_column(Double, nullable=False)
    votes: Mapped[int] = mapped_column(Integer, nullable=False)


class Mixture(Base):
    """A named set of datasets trained on together (``aacbatch mixture create``), so recipes
    and SQL can name the paper's pretraining corpus with one word."""

    __tablename__ = "mixtures"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created()


class MixtureMember(Base):
    """One dataset of a mixture; ``weight`` scales how many of its examples an epoch draws
    (1: each once, 2: each twice, 0.5: a random half)."""

    __tablename__ = "mixture_members"
    __table_args__ = (UniqueConstraint("mixture_id", "position"),)
    id: Mapped[str] = _id()
    mixture_id: Mapped[str] = _ref()
    dataset_id: Mapped[str] = _ref()
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    weight: Mapped[float] = mapped_column(Double, nullable=False)


class RunDataset(Base):
    """A dataset a run trained on (``role`` train) or was validated on (``role`` val): with
    the dataset's content fingerprint when the run started, the split read, the sampling
    weight, how many examples it gave, and how many of its clips were left out as copies of an
    earlier member's (same source recording or an audited duplicate)."""

    __tablename__ = "run_datasets"
    id: Mapped[str] = _id()
    run_id: Mapped[str] = _ref()
    dataset_id: Mapped[str] = _ref()
    role: Mapped[str] = mapped_column(String(8), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    split: Mapped[str] = mapped_column(String(64), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    weight: Mapped[float | None] = mapped_column(Double)
    n_examples: Mapped[int | None] = mapped_column(Integer)
    n_duplicates: Mapped[int | None] = mapped_column(Integer)
