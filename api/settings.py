"""Settings read from the environment (``HIPPOGRAPH_*``), and the composition root that
turns them into a :class:`~graph.MemoryGraph`.

This is the one place that reads configuration. The engine's limits and parameters are
defined once, as the defaults of :class:`~graph.GraphConfig` (with
:class:`~graph.activation.ActivationParams` and :class:`~graph.scoring.ScoreWeights`);
:class:`Settings` exposes each of them as a flat field whose default is read from those
dataclasses, adds bounds so a bad environment value fails with a message naming it, and
:meth:`Settings.graph_config` builds the dataclass back.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hippograph.embeddings import Encoder, HashingEncoder, TextEncoder
from hippograph.embeddings.encoder import MODEL_DIM, MODEL_NAME
from hippograph.graph import AssociationType, GraphConfig, GraphStore, MemoryGraph, SQLiteStore
from hippograph.graph.activation import ActivationParams
from hippograph.graph.model import MAX_PASSAGES, BadInput, HippographError
from hippograph.graph.scoring import ScoreWeights
from hippograph.lifecycle.model import JOBS, LifecycleConfig
from hippograph.lifecycle.runner import parse_jobs

__all__ = [
    "STORE_VARIABLES",
    "DataDirInUse",
    "Settings",
    "hold_data_dir",
    "lock_data_dir",
    "make_encoder",
    "open_graph",
    "open_store",
]

# The variables that choose and reach the store (besides HIPPOGRAPH_*): what a process
# started for another store must not inherit.
STORE_VARIABLES = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")

_GRAPH = GraphConfig()
_ACTIVATION = ActivationParams()
_WEIGHTS = ScoreWeights()
_LIFECYCLE = LifecycleConfig()
# Flat settings prefixes of the nested parameter dataclasses of GraphConfig.
_NESTED = {"activation": ("activation_", ActivationParams), "weights": ("weight_", ScoreWeights)}

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class Settings(BaseSettings):
    """Everything the service, the CLI and the benchmarks can be configured with.

    Each field is read from ``HIPPOGRAPH_<FIELD>`` (e.g. ``HIPPOGRAPH_DATA_DIR``,
    ``HIPPOGRAPH_MAX_K``, ``HIPPOGRAPH_ACTIVATION_HOPS``, ``HIPPOGRAPH_WEIGHT_CONTEXT``).
    """

    model_config = SettingsConfigDict(env_prefix="HIPPOGRAPH_", extra="ignore", frozen=True)

    # -- where and how -----------------------------------------------------------------
    data_dir: Path = Path("./data")
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    # The SQLite store's write journal: every committed write also appended as a
    # replayable entry, which `hippograph backup --incremental` ships and `restore --at`
    # replays to a point in time. It costs disk (a second copy of each written vector,
    # until `backup --prune-journal`) and ~5% on remember; off, incremental backups and
    # point-in-time restores are refused.
    journal: bool = True
    # "hashing" is a tiny deterministic encoder for tests and demos, never production.
    encoder: Literal["minilm", "hashing"] = "minilm"
    # What runs the model: ONNX Runtime (exported at load; the same vectors, and no
    # waiting for the GIL between operators while other threads run Python) or PyTorch.
    encoder_backend: Literal["onnx", "torch"] = "onnx"
    debug: bool = False
    # FAISS threads per search. One query is too small to split: with two OpenMP threads
    # on a 2-core machine under load a 30k-vector search took 12-15 ms, with one 0.55 ms.
    faiss_threads: int = Field(default=1, ge=1, le=256)
    # Neo4j instead of SQLite when NEO4J_URI is set (the driver's usual variables, not
    # HIPPOGRAPH_-prefixed); the data directory still holds the derived files.
    neo4j_uri: str | None = Field(default=None, validation_alias="NEO4J_URI")
    neo4j_user: str | None = Field(default=None, validation_alias="NEO4J_USER")
    neo4j_password: SecretStr | None = Field(default=None, validation_alias="NEO4J_PASSWORD")
    neo4j_database: str | None = Field(default=None, validation_alias="NEO4J_DATABASE")
    # A file the Neo4j store appends each statement's name to when it first runs it (the
    # test suite checks that every statement ran against a live server).
    neo4j_trace: Path | None = None
    # How long a call waits for an unreachable or restarting Neo4j before it fails with
    # STORE_UNAVAILABLE (the driver's connection_timeout, connection_acquisition_timeout
    # and max_transaction_retry_time): a restart shorter than the retry time goes
    # unnoticed, an outage answers within about the sum instead of hanging.
    neo4j_connection_timeout_s: float = Field(default=5.0, gt=0.0, le=600.0)
    neo4j_acquisition_timeout_s: float = Field(default=10.0, gt=0.0, le=600.0)
    neo4j_retry_time_s: float = Field(default=15.0, ge=0.0, le=600.0)
    # The server rolls back a transaction of ours still running after this, per started
    # thousand rows it writes (a stalled server, a lock held by a connection that
    # died): the call answers STORE_UNAVAILABLE instead of hanging.
    neo4j_transaction_timeout_s: float = Field(default=30.0, gt=0.0, le=3600.0)

    # -- limits ------------------------------------------------------------------------
    max_content_chars: int = Field(default=_GRAPH.max_content_chars, ge=1)
    max_batch: int = Field(default=_GRAPH.max_batch, ge=1)
    max_k: int = Field(default=_GRAPH.max_k, ge=1)
    max_hops: int = Field(default=_GRAPH.max_hops, ge=0)
    max_links: int = Field(default=_GRAPH.max_links, ge=0)
    max_metadata_bytes: int = Field(default=_GRAPH.max_metadata_bytes, ge=2)  # "{}" is 2 bytes
    max_id_chars: int = Field(default=_GRAPH.max_id_chars, ge=1)

    # -- association on write ----------------------------------------------------------
    similar_k: int = Field(default=_GRAPH.similar_k, ge=0)
    similar_threshold: float = Field(default=_GRAPH.similar_threshold, ge=-1.0, le=1.0)
    supersede_similarity: float = Field(default=_GRAPH.supersede_similarity, ge=0.0, le=1.0)
    archive_min_similarity: float = Field(default=_GRAPH.archive_min_similarity, ge=-1.0, le=1.0)
    follows_weight: float = Field(default=_GRAPH.follows_weight, ge=0.0, le=1.0)
    mention_weight: float = Field(default=_GRAPH.mention_weight, ge=0.0, le=1.0)
    max_entities: int = Field(default=_GRAPH.max_entities, ge=0)

    # -- passages ----------------------------------------------------------------------
    passages: bool = _GRAPH.passages
    context_passages: bool = _GRAPH.context_passages
    max_passages: int = Field(default=_GRAPH.max_passages, ge=2, le=MAX_PASSAGES)
    passage_min_chars: int = Field(default=_GRAPH.passage_min_chars, ge=1)
    passage_seeds: int = Field(default=_GRAPH.passage_seeds, ge=0)
    passage_weight: Unit = _GRAPH.passage_weight
    context_weight: Unit = _GRAPH.context_weight

    # -- recall ------------------------------------------------------------------------
    dense_seeds: int = Field(default=_GRAPH.dense_seeds, ge=1)
    lexical_seeds: int = Field(default=_GRAPH.lexical_seeds, ge=1)
    lexical_weight: float = Field(default=_GRAPH.lexical_weight, ge=0.0)
    context_text_weight: float = Field(default=_GRAPH.context_text_weight, ge=0.0)
    max_candidates: int = Field(default=_GRAPH.max_candidates, ge=1)
    recency_decay: float = Field(default=_GRAPH.recency_decay, ge=0.0)
    recency_threshold: float = _GRAPH.recency_threshold
    recency_noise: float = Field(default=_GRAPH.recency_noise, gt=0.0)

    # -- spreading activation (graph.activation.ActivationParams) ----------------------
    activation_hops: int = Field(default=_ACTIVATION.hops, ge=0)
    activation_decay: float = Field(default=_ACTIVATION.decay, ge=0.0, le=1.0)
    activation_fanout_exponent: float = Field(default=_ACTIVATION.fanout_exponent, ge=0.0)
    activation_fanin_exponent: float = Field(default=_ACTIVATION.fanin_exponent, ge=0.0)
    activation_threshold: float = Field(default=_ACTIVATION.threshold, ge=0.0)
    activation_max_frontier: int = Field(default=_ACTIVATION.max_frontier, ge=1)
    # One multiplier per association type, in AssociationType order; a JSON list in env.
    activation_type_multipliers: tuple[NonNegative, ...] = Field(
        default=_ACTIVATION.type_multipliers,
        min_length=len(AssociationType),
        max_length=len(AssociationType),
    )

    # -- score weights (graph.scoring.ScoreWeights) ------------------------------------
    weight_similarity: float = Field(default=_WEIGHTS.similarity, ge=0.0)
    weight_activation: float = Field(default=_WEIGHTS.activation, ge=0.0)
    weight_recency: float = Field(default=_WEIGHTS.recency, ge=0.0)
    weight_importance: float = Field(default=_WEIGHTS.importance, ge=0.0)
    weight_context: float = Field(default=_WEIGHTS.context, ge=0.0)
    weight_informativeness: float = Field(default=_WEIGHTS.informativeness, ge=0.0)
    weight_validity: float = Field(default=_WEIGHTS.validity, ge=0.0)

    # -- recall side effects -----------------------------------------------------------
    hebbian_rate: Unit = _GRAPH.hebbian_rate
    hebbian_max: Unit = _GRAPH.hebbian_max
    hebbian_top: int = Field(default=_GRAPH.hebbian_top, ge=1)
    access_flush_every: int = Field(default=_GRAPH.access_flush_every, ge=1)
    access_flush_seconds: float = Field(default=_GRAPH.access_flush_seconds, gt=0.0, le=3600.0)

    # -- derived structures ------------------------------------------------------------
    hnsw_threshold: int = Field(default=_GRAPH.hnsw_threshold, ge=1)
    hnsw_m: int = Field(default=_GRAPH.hnsw_m, ge=2)
    ef_construction: int = Field(default=_GRAPH.ef_construction, ge=1)
    ef_search: int = Field(default=_GRAPH.ef_search, ge=1)
    delta_limit: int = Field(default=_GRAPH.delta_limit, ge=1)

    # -- the GraphQL service (api.app) --------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # "key1=ns1,ns2;key2=*": each bearer key and the namespaces it may read and write
    # ("*": all). Unset: the server is open (and binds to 127.0.0.1 unless told otherwise).
    # A SecretStr so that no repr, log line or settings error ever shows a key.
    api_keys: SecretStr | None = None
    # What one request may ask for, checked before anything runs (LIMIT_EXCEEDED).
    max_body_bytes: int = Field(default=10 * 2**20, ge=1024)
    max_query_depth: int = Field(default=8, ge=1)
    max_query_aliases: int = Field(default=10, ge=0)
    max_query_tokens: int = Field(default=20_000, ge=10)
    max_query_cost: int = Field(default=5_000, ge=1)
    # Threads running engine calls (embedding, recall, writes) off the event loop. More
    # threads than cores pays: concurrent queries wait in the encoder to share one model
    # call (16 clients on 2 cores: 113 recalls/s with 16 threads, 66 with 4).
    worker_threads: int = Field(default=16, ge=1, le=256)
    # Seconds /readyz waits for the store to answer its check before answering 503.
    ready_timeout_s: float = Field(default=5.0, gt=0.0, le=60.0)
    # Seconds in-flight requests get to finish after SIGTERM/SIGINT before the graph closes.
    shutdown_grace_s: int = Field(default=10, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Namespaces whose counts /metrics exports (memories per tier, associations per type).
    metrics_max_namespaces: int = Field(default=100, ge=0)

    # -- lifecycle (lifecycle/) ---------------------------------------------------------
    # The server runs the jobs on every namespace every this many seconds, in a
    # background thread; 0 turns the schedule off. `hippograph lifecycle run` runs them
    # once whatever this says.
    lifecycle_interval_s: float = Field(default=6 * 3600.0, ge=0.0)
    lifecycle_jobs: str = ",".join(JOBS)
    lifecycle_half_life_days: dict[str, float] = Field(
        default_factory=lambda: dict(_LIFECYCLE.half_life_days)
    )
    lifecycle_explicit_slowdown: float = Field(default=_LIFECYCLE.explicit_slowdown, ge=1.0)
    lifecycle_edge_floor: Unit = _LIFECYCLE.edge_floor
    lifecycle_working_idle_days: float = Field(default=_LIFECYCLE.working_idle_days, gt=0.0)
    lifecycle_promote_recent_days: float = Field(default=_LIFECYCLE.promote_recent_days, ge=0.0)
    lifecycle_archive_activation: float = _LIFECYCLE.archive_activation
    lifecycle_archive_idle_days: float = Field(default=_LIFECYCLE.archive_idle_days, ge=0.0)
    lifecycle_important: Unit = _LIFECYCLE.important
    lifecycle_duplicate_cosine: float = Field(default=_LIFECYCLE.duplicate_cosine, ge=0.5, le=1.0)
    lifecycle_min_community: int = Field(default=_LIFECYCLE.min_community, ge=2)
    lifecycle_max_keywords: int = Field(default=_LIFECYCLE.max_keywords, ge=0)
    lifecycle_resolution: float = Field(default=_LIFECYCLE.resolution, gt=0.0)
    lifecycle_seed: int = _LIFECYCLE.seed
    lifecycle_min_region: int = Field(default=_LIFECYCLE.min_region, ge=1)
    lifecycle_compression: Literal["gzip"] = "gzip"

    @model_validator(mode="after")
    def _hops_within_limit(self) -> Settings:
        if self.activation_hops > self.max_hops:
            raise ValueError(
                f"activation_hops ({self.activation_hops}) must not exceed "
                f"max_hops ({self.max_hops})"
            )
        return self

    @model_validator(mode="after")
    def _known_lifecycle_jobs(self) -> Settings:
        try:
            parse_jobs(self.lifecycle_jobs)
        except BadInput as exc:
            raise ValueError(f"lifecycle_jobs: {exc}") from None
        unknown = set(self.lifecycle_half_life_days) - {t.value for t in AssociationType}
        if unknown:
            raise ValueError(f"lifecycle_half_life_days: unknown type {sorted(unknown)[0]}")
        if any(v <= 0 for v in self.lifecycle_half_life_days.values()):
            raise ValueError("lifecycle_half_life_days: every half-life must be above 0")
        return self

    def lifecycle_config(self) -> LifecycleConfig:
        """The lifecycle jobs' configuration: every field from its ``lifecycle_`` setting."""
        values = {f.name: getattr(self, "lifecycle_" + f.name) for f in fields(LifecycleConfig)}
        values["half_life_days"] = {**_LIFECYCLE.half_life_days, **values["half_life_days"]}
        return LifecycleConfig(**values)

    def graph_config(self) -> GraphConfig:
        """The engine's configuration: every GraphConfig field from its flat setting."""
        values: dict[str, Any] = {}
        for f in fields(GraphConfig):
            if f.name in _NESTED:
                prefix, cls = _NESTED[f.name]
                nested = {g.name: self._setting(prefix + g.name) for g in fields(cls)}
                values[f.name] = cls(**nested)
            else:
                values[f.name] = self._setting(f.name)
        return GraphConfig(**values)

    def _setting(self, name: str) -> Any:
        if name not in type(self).model_fields:
            # A parameter was added to the engine without a setting: say where to add it.
            raise TypeError(f"api/settings.py: Settings has no field {name!r}; add one")
        return getattr(self, name)


class _LazyModelEncoder:
    """The sentence encoder, loaded on the first ``encode``.

    Opening a graph needs only the encoder's ``dim`` and ``name`` (to check the saved
    index); commands that never embed text (stats, get, forget) or that reject their
    input before embedding should not pay seconds for loading the model.
    """

    def __init__(self, load: Callable[[], TextEncoder], *, dim: int, name: str) -> None:
        self._load = load
        self._dim = dim
        self._name = name
        self._encoder: TextEncoder | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def name(self) -> str:
        return self._name

    def _loaded(self) -> TextEncoder:
        with self._lock:
            if self._encoder is None:
                encoder = self._load()
                if encoder.dim != self._dim or encoder.name != self._name:
                    raise RuntimeError(
                        f"encoder {encoder.name} ({encoder.dim}-d) is not the expected "
                        f"{self._name} ({self._dim}-d)"
                    )
                self._encoder = encoder
            return self._encoder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._loaded().encode(texts)

    def encode_one(self, text: str) -> np.ndarray:
        return self._loaded().encode_one(text)


def make_encoder(settings: Settings) -> TextEncoder:
    """The encoder the settings choose; the real model loads on first use."""
    if settings.encoder == "hashing":
        return HashingEncoder()
    return _LazyModelEncoder(
        partial(Encoder, backend=settings.encoder_backend), dim=MODEL_DIM, name=MODEL_NAME
    )


# -- one process per data directory ----------------------------------------------------

LOCK_FILE = "hippograph.lock"


class DataDirInUse(HippographError):
    """Another process has the data directory open.

    One process at a time owns a SQLite data directory: besides the database (which
    SQLite alone would share safely) it writes the derived files (vector indexes, views,
    archive files) from its own memory, and two writers would overwrite each other's.
    The lock is ``flock`` on ``DIR/hippograph.lock``: the kernel releases it when the
    holder exits, however it exits, so a killed server never leaves a stale lock.
    """

    code = "DATA_DIR_IN_USE"

    def __init__(self, data_dir: Path, holder: str) -> None:
        super().__init__(
            f"data directory {data_dir} is in use by {holder}; stop it, or send the work "
            "to the running server over GraphQL (one process at a time may open a data "
            "directory)"
        )
        self.data_dir = data_dir
        self.holder = holder


class _DataDirLock:
    """The exclusive lock on a data directory, shared by the stores one process opens.

    ``flock`` locks belong to an open file, not to a process: a second ``open`` + ``flock``
    in the same process would refuse the first. So a process takes the lock once per
    directory and counts its users; the last ``release`` unlocks it. A forked child
    drops the parent's entries (the lock is the parent's) and must take its own.
    """

    _held: ClassVar[dict[str, _DataDirLock]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: str, fd: int) -> None:
        self._key = key
        self._fd = fd
        self._users = 0

    @classmethod
    def acquire(cls, data_dir: Path) -> _DataDirLock:
        """Take (or share, within this process) the lock of ``data_dir``; raises
        ``DataDirInUse`` at once, without waiting, when another process holds it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(data_dir)
        with cls._guard:
            lock = cls._held.get(key)
            if lock is None:
                lock = cls(key, cls._lock_file(data_dir))
                cls._held[key] = lock
            lock._users += 1
            return lock

    @staticmethod
    def _lock_file(data_dir: Path) -> int:
        path = data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DataDirInUse(data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message another process will print.
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{command[:200]}\n".encode(), 0)
        return fd

    def release(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users > 0 or self._held.get(self._key) is not self:
                return
            del self._held[self._key]
            try:
                os.ftruncate(self._fd, 0)
            finally:
                os.close(self._fd)  # closing the last descriptor releases the flock

    @classmethod
    def _forget_after_fork(cls) -> None:
        cls._guard = threading.Lock()
        for lock in cls._held.values():
            os.close(lock._fd)  # this copy only; the parent keeps its lock
        cls._held = {}


os.register_at_fork(after_in_child=_DataDirLock._forget_after_fork)


def _holder(fd: int) -> str:
    """``pid N (command)`` from a held lock file, or a vaguer phrase when the holder has
    not written it yet."""
    lines = os.pread(fd, 512, 0).decode("utf-8", errors="replace").splitlines()
    if not lines or not lines[0].strip().isdigit():
        return "another process"
    command = lines[1].strip() if len(lines) > 1 else ""
    return f"pid {lines[0].strip()}" + (f" ({command})" if command else "")


@contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold the lock of ``data_dir`` (created if missing) for the block; raises
    ``DataDirInUse`` at once when another process holds it. Stores this process opens
    on the directory inside the block share the lock."""
    lock = _DataDirLock.acquire(Path(data_dir))
    try:
        yield
    finally:
        lock.release()


@contextmanager
def hold_data_dir(settings: Settings) -> Iterator[None]:
    """Hold the data directory's lock for the block (no-op for Neo4j): a command that
    opens the graph later (``serve`` opens it when the app starts) takes this first, so
    that a directory in use is refused at once with ``DataDirInUse``, before anything
    starts; the graph opened inside the block shares the lock."""
    if settings.neo4j_uri:
        yield
        return
    with lock_data_dir(Path(settings.data_dir)):
        yield


class _LockedSQLiteStore(SQLiteStore):
    """The SQLite store holding its data directory's lock until it is closed."""

    def __init__(
        self, path: Path, *, synchronous: str, lock: _DataDirLock, journal: bool = True
    ) -> None:
        super().__init__(path, synchronous=synchronous, journal=journal)
        self._dir_lock: _DataDirLock | None = lock

    def close(self) -> None:
        try:
            super().close()
        finally:
            lock, self._dir_lock = self._dir_lock, None
            if lock is not None:
                lock.release()


def open_store(settings: Settings) -> GraphStore:
    """The store the settings choose: Neo4j when ``NEO4J_URI`` is set, else the SQLite
    file in the data directory.

    The SQLite store holds the data directory's lock (see :class:`DataDirInUse`) until
    it is closed; raises ``DataDirInUse`` when another process holds it."""
    if settings.neo4j_uri:
        from hippograph.graph.neo4j_store import Neo4jStore

        password = settings.neo4j_password
        # A password without a user is for user "neo4j", as the driver's tools assume.
        user = settings.neo4j_user or ("neo4j" if password is not None else None)
        return Neo4jStore(
            settings.neo4j_uri,
            user,
            password.get_secret_value() if password is not None else None,
            database=settings.neo4j_database,
            statement_trace=settings.neo4j_trace,
            connection_timeout=settings.neo4j_connection_timeout_s,
            acquisition_timeout=settings.neo4j_acquisition_timeout_s,
            retry_time=settings.neo4j_retry_time_s,
            transaction_timeout=settings.neo4j_transaction_timeout_s,
        )
    lock = _DataDirLock.acquire(Path(settings.data_dir))
    try:
        return _LockedSQLiteStore(
            Path(settings.data_dir) / "hippograph.db",
            synchronous=settings.sqlite_synchronous,
            lock=lock,
            journal=settings.journal,
        )
    except BaseException:
        lock.release()
        raise


def open_graph(settings: Settings) -> MemoryGraph:
    """Compose a :class:`~graph.MemoryGraph` from settings: encoder, store, config.

    The caller owns the graph and must close it (it is a context manager).
    """
    import faiss

    faiss.omp_set_num_threads(settings.faiss_threads)
    data_dir = Path(settings.data_dir)
    store = open_store(settings)
    try:
        return MemoryGraph(
            data_dir, encoder=make_encoder(settings), config=settings.graph_config(), store=store
        )
    except BaseException:
        store.close()
        raise
