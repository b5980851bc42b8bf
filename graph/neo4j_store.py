"""The production store: Neo4j, through the official driver.

:class:`Neo4jStore` implements the ``GraphStore`` contract over a
:class:`~hippograph.graph.neo4j_connection.Neo4jConnection`. Its parts:

- :mod:`~hippograph.graph.neo4j_statements`: the data model and the statements that
  create the schema and write; :mod:`~hippograph.graph.neo4j_read_statements`: the
  statements that read (:func:`statements` lists every one of both);
- :mod:`~hippograph.graph.neo4j_records`: memories and associations as node maps,
  parameter rows and records;
- :mod:`~hippograph.graph.neo4j_connection`: the driver, the version check, error
  mapping and how a statement runs;
- :mod:`~hippograph.graph.neo4j_writes`: the work of the write transactions.

One driver (one connection pool) per store object; the composition root opens one store
per process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Unpack

import numpy as np

from hippograph.graph import neo4j_read_statements, neo4j_statements
from hippograph.graph.model import (
    Association,
    AssociationType,
    Memory,
    MemoryKind,
    Tier,
    from_epoch,
    passage_ids,
)
from hippograph.graph.neo4j_connection import (
    MIN_VERSION,
    Neo4jConnection,
    Neo4jOptions,
    check_version,
    version_tuple,
)
from hippograph.graph.neo4j_read_statements import (
    ASSOCIATIONS,
    BY_CONTENT_HASH,
    ENTITIES,
    GET_BY_ID,
    GET_BY_SEQ,
    ITER_CONTENTS,
    ITER_EDGES_FROM_ENTITIES,
    ITER_EDGES_FROM_MEMORIES,
    ITER_EMBEDDINGS,
    ITER_MEMORIES,
    ITER_PASSAGES,
    LAST_IN_SESSION,
    LOAD_EDGES_FROM_ENTITIES,
    LOAD_EDGES_FROM_MEMORIES,
    LOAD_ENTITY_NODES,
    LOAD_MEMORY_NODES,
    NODE_IDS,
    RECALLED,
    SEARCH_TEXT,
    STATS_EDGES,
    STATS_ENTITIES,
    STATS_MEMORIES,
)
from hippograph.graph.neo4j_records import association_from_record, memory_from_map, native_time
from hippograph.graph.neo4j_statements import (
    BUMP_GENERATION,
    FORGET,
    GENERATION,
    IMPORTANCE_BANDS,
    LABELS,
    NAMESPACES,
    PROPERTY_KEYS,
    RECORD_ACCESS,
    RECORD_RUN,
    RELATIONSHIP_TYPES,
    RESOLVE_ALIASES,
    RUNS,
    STRENGTHEN,
    Statement,
)
from hippograph.graph.neo4j_writes import (
    ROWS,
    apply_changes,
    change_rows,
    chunks,
    node_seqs,
    write_batch,
)
from hippograph.graph.store import (
    AccessRecord,
    ChangeBatch,
    EdgeColumns,
    NodeColumns,
    RunRecord,
    WriteBatch,
    WriteResult,
)
from hippograph.graph.text import query_terms

__all__ = [
    "IMPORTANCE_BANDS",
    "LABELS",
    "MIN_VERSION",
    "PROPERTY_KEYS",
    "RELATIONSHIP_TYPES",
    "Neo4jStore",
    "Statement",
    "check_version",
    "statements",
    "version_tuple",
]


def statements() -> list[Statement]:
    """Every statement this store can issue: the constants (and dicts and tuples of
    them) of :mod:`~hippograph.graph.neo4j_statements` and
    :mod:`~hippograph.graph.neo4j_read_statements`."""
    found: dict[int, Statement] = {}  # by identity: a module may import another's
    for module in (neo4j_statements, neo4j_read_statements):
        for value in vars(module).values():
            if isinstance(value, Statement):
                items: Any = [value]
            elif isinstance(value, tuple | dict):
                items = value.values() if isinstance(value, dict) else value
            else:
                continue
            found |= {id(s): s for s in items if isinstance(s, Statement)}
    return sorted(found.values(), key=lambda s: s.name)


_PAGE = 20_000  # nodes per page of a bulk read
_VECTOR_PAGE = 2_000  # memories per page of vectors (the server builds each page in its heap)
_TIERS = list(Tier)
_TIER_CODE = {t.value: i for i, t in enumerate(_TIERS)}


class Neo4jStore:
    """``GraphStore`` over a Neo4j 5 database.

    Parameters
    ----------
    uri:
        ``neo4j://``, ``neo4j+s://`` (Aura) or ``bolt://`` address.
    user, password:
        Basic authentication; no authentication when ``user`` is None.
    database:
        The database to use (None: the server's default database).
    driver:
        An already configured ``neo4j.Driver`` to use instead (the store closes it).
    statement_trace:
        A file to which the name of every statement is appended the first time this
        store runs it (the test suite's check that every statement ran live).
    connection_timeout, acquisition_timeout, retry_time:
        Seconds, the driver's ``connection_timeout``, ``connection_acquisition_timeout``
        and ``max_transaction_retry_time`` (None: the driver's defaults). A call that
        still cannot reach the server after them raises ``StoreUnavailable``.
    transaction_timeout:
        Seconds after which the server terminates (and rolls back) a transaction of
        this store, which then raises ``StoreUnavailable``: a stalled server or a lock
        held by a dead connection cannot hold a call for longer. A write gets it once
        per started thousand rows (memories, entities, edges, changes), since an import
        is one transaction (None: the server's ``db.transaction.timeout``).

    Driver errors that mean "the store cannot be used right now" (unreachable, connection
    lost, credentials refused, unknown database, transient errors left after the
    driver's retries) leave every method as ``StoreUnavailable``, naming the server and
    the variable to check, never the password.
    """

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        **options: Unpack[Neo4jOptions],
    ) -> None:
        auth = (user, password or "") if user is not None else None
        self._connection = Neo4jConnection(uri, auth, **options)
        self._read = self._connection.read

    def close(self) -> None:
        self._connection.close()

    def ping(self) -> None:
        """One trivial statement, not retried: ``StoreUnavailable`` at once (within the
        connection timeouts) when the server or its database cannot be used."""
        self._connection.ping()

    def namespaces(self) -> list[str]:
        return [r["name"] for r in self._read(NAMESPACES)]

    def generation(self, namespace: str) -> int:
        rows = self._read(GENERATION, namespace=namespace)
        return int(rows[0]["generation"]) if rows else 0

    # -- writes ---------------------------------------------------------------------

    def write(self, namespace: str, batch: WriteBatch) -> WriteResult:
        def work(run: Callable[..., list[Any]]) -> WriteResult:
            return write_batch(run, namespace, batch)

        rows = len(batch.memories) + len(batch.entities) + len(batch.edges)
        result: WriteResult = self._connection.transaction(work, rows)
        return result

    def forget(self, namespace: str, memory_id: str) -> tuple[int, int] | None:
        def work(run: Callable[..., list[Any]]) -> tuple[int, int] | None:
            rows = run(FORGET, namespace=namespace, id=memory_id)
            if not rows:
                return None
            return int(rows[0]["seq"]), int(run(BUMP_GENERATION, namespace=namespace)[0][0])

        result: tuple[int, int] | None = self._connection.transaction(work)
        return result

    def apply_changes(self, namespace: str, changes: ChangeBatch) -> int:
        def work(run: Callable[..., list[Any]]) -> int:
            return apply_changes(run, namespace, changes)

        generation: int = self._connection.transaction(work, change_rows(changes))
        return generation

    def resolve_aliases(self, namespace: str, ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in chunks(list(ids)):
            for r in self._read(RESOLVE_ALIASES, namespace=namespace, ids=list(part)):
                found[r["id"]] = r["survivor"]
        return found

    def record_run(self, namespace: str, run: RunRecord) -> None:
        self._connection.execute(
            RECORD_RUN,
            write=True,
            namespace=namespace,
            id=run.id,
            job=run.job,
            started_at=run.started_at,
            finished_at=run.finished_at,
            dry_run=bool(run.dry_run),
            counts=json.dumps(run.counts, sort_keys=True),
            changed=int(sum(v for v in run.counts.values() if isinstance(v, int))),
        )

    def runs(self, namespace: str, limit: int = 20) -> list[RunRecord]:
        rows = self._read(RUNS, namespace=namespace, limit=int(limit))
        found: list[RunRecord] = []
        for r in rows:
            started, finished = native_time(r["started_at"]), native_time(r["finished_at"])
            assert started is not None and finished is not None
            found.append(
                RunRecord(
                    id=r["id"],
                    job=r["job"],
                    started_at=started,
                    finished_at=finished,
                    dry_run=bool(r["dry_run"]),
                    counts=json.loads(r["counts"]) if r["counts"] else {},
                )
            )
        return found

    def record_access(
        self,
        namespace: str,
        accesses: Sequence[AccessRecord],
        strengthened: Sequence[tuple[int, int, int, float, float]],
    ) -> int:
        if not accesses and not strengthened:
            return self.generation(namespace)
        access_rows = [
            {
                "seq": int(a.seq),
                "at": from_epoch(a.at),
                "count": int(a.count),
                "tier": a.tier.value if a.tier else None,
            }
            for a in accesses
        ]
        edge_rows = [
            {
                "src": int(src),
                "dst": int(dst),
                "type": AssociationType.from_code(int(code)).value,
                "weight": float(weight),
                "at": from_epoch(at),
            }
            for src, dst, code, weight, at in strengthened
        ]

        def work(run: Callable[..., list[Any]]) -> int:
            for part in chunks(access_rows):
                run(RECORD_ACCESS, namespace=namespace, rows=list(part))
            for part in chunks(edge_rows):
                run(STRENGTHEN, namespace=namespace, rows=list(part))
            return int(run(BUMP_GENERATION, namespace=namespace)[0]["generation"])

        generation: int = self._connection.transaction(work)
        return generation

    # -- reads ----------------------------------------------------------------------

    def seqs_of(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        return node_seqs(self._read, namespace, ids)

    def node_ids(self, namespace: str, seqs: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for part in chunks([int(s) for s in seqs]):
            for r in self._read(NODE_IDS, namespace=namespace, seqs=list(part)):
                found[int(r["seq"])] = r["id"]
        return found

    def get(self, namespace: str, ids: Sequence[str], *, embeddings: bool = False) -> list[Memory]:
        by_id: dict[str, Memory] = {}
        for part in chunks(list(ids)):
            for r in self._read(
                GET_BY_ID, namespace=namespace, ids=list(part), embeddings=embeddings
            ):
                memory = memory_from_map(r["memory"])
                by_id[memory.id] = memory
        return [by_id[i] for i in ids if i in by_id]

    def by_content_hash(self, namespace: str, hashes: Sequence[str]) -> list[Memory]:
        found: dict[int, Memory] = {}
        for part in chunks(list(dict.fromkeys(hashes))):
            rows = self._read(
                BY_CONTENT_HASH, namespace=namespace, hashes=list(part), embeddings=False
            )
            for r in rows:
                found[int(r["seq"])] = memory_from_map(r["memory"])
        return [found[s] for s in sorted(found)]

    def get_by_seq(
        self, namespace: str, seqs: Sequence[int], *, embeddings: bool = False
    ) -> dict[int, Memory]:
        found: dict[int, Memory] = {}
        for part in chunks([int(s) for s in seqs]):
            rows = self._read(
                GET_BY_SEQ, namespace=namespace, seqs=list(part), embeddings=embeddings
            )
            for r in rows:
                found[int(r["seq"])] = memory_from_map(r["memory"])
        return found

    def recalled(
        self, namespace: str, seqs: Sequence[int], named: Sequence[int]
    ) -> tuple[dict[int, Memory], dict[int, str]]:
        seqs, named = [int(s) for s in seqs], [int(s) for s in named]
        if len(seqs) > ROWS or len(named) > ROWS:  # more than a recall asks for
            return self.get_by_seq(namespace, seqs), self.node_ids(namespace, named)
        row = self._read(RECALLED, namespace=namespace, seqs=seqs, named=named, embeddings=False)[0]
        memories = {int(seq): memory_from_map(memory) for seq, memory in row["memories"]}
        return memories, {int(seq): node_id for seq, node_id in row["names"]}

    def last_in_session(self, namespace: str, session_id: str) -> tuple[str, int] | None:
        rows = self._read(LAST_IN_SESSION, namespace=namespace, session_id=session_id)
        return (rows[0]["id"], int(rows[0]["seq"])) if rows else None

    def associations(
        self,
        namespace: str,
        node_id: str,
        types: Sequence[AssociationType] | None = None,
        limit: int = 100,
    ) -> list[Association]:
        rows = self._read(
            ASSOCIATIONS,
            namespace=namespace,
            id=node_id,
            types=[t.value for t in types] if types else None,
            limit=int(limit),
        )
        return [association_from_record(r) for r in rows]

    def search_text(self, namespace: str, query: str, limit: int) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or limit <= 0:
            return []
        # Each term quoted: Lucene syntax in the query is read as plain words.
        lucene = " OR ".join(f'"{t}"' for t in terms)
        rows = self._read(SEARCH_TEXT, namespace=namespace, query=lucene, limit=int(limit))
        return [(int(r["seq"]), float(r["score"])) for r in rows if r["score"] > 0]

    def load_nodes(self, namespace: str) -> NodeColumns:
        memories = [
            r for page in self._collected(LOAD_MEMORY_NODES, namespace) for r in page["rows"]
        ]
        entities = [
            s for page in self._collected(LOAD_ENTITY_NODES, namespace) for s in page["rows"]
        ]
        n_memories, n = len(memories), len(memories) + len(entities)
        nan = float("nan")
        seq = np.array([r[0] for r in memories] + entities, dtype=np.int64)
        order = np.argsort(seq, kind="stable")
        columns = NodeColumns(
            seq=seq,
            is_memory=np.arange(n) < n_memories,
            occurred_at=np.array(
                [nan if r[1] is None else r[1] for r in memories] + [nan] * len(entities),
                dtype=np.float64,
            ),
            last_accessed_at=np.array(
                [nan if r[2] is None else r[2] for r in memories] + [nan] * len(entities),
                dtype=np.float64,
            ),
            access_count=np.array(
                [r[3] or 0 for r in memories] + [0] * len(entities), dtype=np.int32
            ),
            importance=np.array(
                [r[4] or 0.0 for r in memories] + [0.0] * len(entities), dtype=np.float32
            ),
            tier=np.array(
                [_TIER_CODE.get(r[5] or "", -1) for r in memories] + [-1] * len(entities),
                dtype=np.int8,
            ),
            session=[r[6] for r in memories] + [None] * len(entities),
        )
        return NodeColumns(
            seq=columns.seq[order],
            is_memory=columns.is_memory[order],
            occurred_at=columns.occurred_at[order],
            last_accessed_at=columns.last_accessed_at[order],
            access_count=columns.access_count[order],
            importance=columns.importance[order],
            tier=columns.tier[order],
            session=[columns.session[i] for i in order.tolist()],
        )

    def load_edges(self, namespace: str) -> EdgeColumns:
        rows = [
            row
            for statement in (LOAD_EDGES_FROM_MEMORIES, LOAD_EDGES_FROM_ENTITIES)
            for page in self._collected(statement, namespace)
            for row in page["rows"]
        ]
        codes = {t.value: t.code for t in AssociationType}
        return EdgeColumns(
            src=np.array([r[0] for r in rows], dtype=np.int64),
            dst=np.array([r[1] for r in rows], dtype=np.int64),
            type=np.array([codes[r[2]] for r in rows], dtype=np.int8),
            weight=np.array([r[3] for r in rows], dtype=np.float32),
        )

    def _pages(
        self, statement: Statement, namespace: str, after: int, chunk: int
    ) -> Iterator[list[Any]]:
        """Pages of a statement that takes (namespace, after, chunk) and returns ``seq``
        ascending."""
        while True:
            rows = self._read(statement, namespace=namespace, after=int(after), chunk=int(chunk))
            if not rows:
                return
            yield rows
            after = int(rows[-1]["seq"])

    def _collected(
        self, statement: Statement, namespace: str, *, after: int = -1, chunk: int = _PAGE
    ) -> Iterator[Any]:
        """Each page's record of a statement that returns one record per page: ``last``,
        the page's last seq, and the page's columns."""
        while True:
            record = self._read(statement, namespace=namespace, after=int(after), chunk=chunk)[0]
            if record["last"] is None:
                return
            yield record
            after = int(record["last"])

    def iter_embeddings(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        page = min(int(chunk), _VECTOR_PAGE)
        for record in self._collected(ITER_EMBEDDINGS, namespace, after=min_seq, chunk=page):
            yield (
                np.array(record["seqs"], dtype=np.int64),
                np.array(record["vectors"], dtype=np.float32),
            )

    def iter_passages(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        page = min(int(chunk), _VECTOR_PAGE)
        for record in self._collected(ITER_PASSAGES, namespace, after=min_seq, chunk=page):
            ids: list[int] = []
            vectors: list[np.ndarray] = []
            for seq, passage_count, passages, context in record["rows"]:
                count = int(passage_count or 0)
                if count:
                    vectors += list(np.array(passages, np.float32).reshape(count, -1))
                if context is not None:
                    vectors.append(np.array(context, np.float32))
                ids += passage_ids(int(seq), count, context is not None)
            yield np.array(ids, np.int64), np.stack(vectors)

    def iter_contents(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, list[str]]]:
        for record in self._collected(ITER_CONTENTS, namespace, chunk=min(int(chunk), _PAGE)):
            yield np.array(record["seqs"], np.int64), list(record["contents"])

    def iter_memories(
        self, namespace: str, *, embeddings: bool = False, chunk: int = 10_000
    ) -> Iterator[list[Memory]]:
        after = -1
        while True:
            rows = self._read(
                ITER_MEMORIES, namespace=namespace, after=after, chunk=chunk, embeddings=embeddings
            )
            if not rows:
                return
            yield [memory_from_map(r["memory"]) for r in rows]
            after = int(rows[-1]["seq"])

    def entities(self, namespace: str) -> dict[str, str]:
        return {r["id"]: r["label"] for r in self._read(ENTITIES, namespace=namespace)}

    def iter_associations(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[list[Association]]:
        for statement in (ITER_EDGES_FROM_MEMORIES, ITER_EDGES_FROM_ENTITIES):
            for rows in self._pages(statement, namespace, -1, chunk):
                edges = [association_from_record(r) for r in rows if r["type"] is not None]
                if edges:
                    yield edges

    def stats(self, namespace: str) -> dict[str, dict[str, int]]:
        tiers: dict[str, int] = {}
        kinds: dict[str, int] = {}
        for r in self._read(STATS_MEMORIES, namespace=namespace):
            tiers[r["tier"]] = tiers.get(r["tier"], 0) + int(r["count"])
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + int(r["count"])
        types: dict[str, int] = {}
        for r in self._read(STATS_EDGES, namespace=namespace):
            types[r["type"]] = types.get(r["type"], 0) + int(r["count"])
        entities = self._read(STATS_ENTITIES, namespace=namespace)[0]["count"]
        return {
            "tiers": {t.value: tiers.get(t.value, 0) for t in Tier},
            "kinds": {k.value: kinds.get(k.value, 0) for k in MemoryKind},
            "associations": {t.value: types.get(t.value, 0) for t in AssociationType},
            "entities": {"count": int(entities)},
        }
