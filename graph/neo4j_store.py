"""The production store: Neo4j, through the official driver.

All Cypher lives here, as module-level :class:`Statement` constants with declared
parameters; no statement is built from values, so :func:`statements` enumerates every
statement the store can issue (``make lint-cypher`` checks each with Neo4j's own Cypher
front end, against :data:`LABELS`, :data:`RELATIONSHIP_TYPES` and
:data:`PROPERTY_KEYS`).

The graph, as Neo4j Browser shows it:

- memories are ``(:Memory:<Tier>)`` nodes, the tier label one of ``:Working``,
  ``:Episodic``, ``:Semantic``, ``:Archived`` (it moves when the tier changes);
  concepts are ``(:Memory:Semantic {kind: 'concept'})``; entities are ``(:Entity)``;
  every node carries ``namespace``, ``id`` and the store-assigned ``seq``;
- each association type is its own relationship type (``:SIMILAR_TO``, ``:FOLLOWS``,
  ...) with ``weight``, ``created_at``, ``last_activated_at``, ``activation_count`` and
  ``explicit``;
- embeddings are stored on the node (``embedding``, ``passages`` with
  ``passage_count``, ``context_embedding``), so the FAISS index can be rebuilt from
  Neo4j; times are Neo4j ``DATETIME`` values in UTC;
- ``caption`` (a short content prefix) and one importance band label
  (:data:`IMPORTANCE_BANDS`) exist for the Browser style in ``graph/browser``;
- ``(:HippographNamespace {name, generation})`` holds each namespace's write
  generation and ``(:HippographCounter {name: 'seq'})`` hands out seqs.

Every write is one managed transaction (``Session.execute_write``: the driver retries it
on transient errors, so the work function recomputes everything it sends) made of
batched ``UNWIND $rows`` statements. Constraints and indexes are created idempotently
when the store opens. One driver (one connection pool) per store object; the
composition root opens one store per process.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    DuplicateId,
    Memory,
    MemoryKind,
    NotFound,
    StoreUnavailable,
    Tier,
    from_epoch,
    passage_ids,
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


@dataclass(frozen=True, slots=True)
class Statement:
    """One Cypher statement and the parameters it takes (exactly these, always)."""

    name: str
    cypher: str
    params: frozenset[str] = frozenset()


def _statement(name: str, cypher: str, *params: str) -> Statement:
    return Statement(name, " ".join(cypher.split()), frozenset(params))


# -- the data model --------------------------------------------------------------------

_TIER_LABELS = {t: t.value.capitalize() for t in Tier}  # Tier.WORKING -> "Working"
# Importance bands for the Browser style (size by importance): (label, lower bound).
IMPORTANCE_BANDS: tuple[tuple[str, float], ...] = (
    ("ImportanceLow", 0.0),
    ("ImportanceMid", 0.3),
    ("ImportanceHigh", 0.7),
)
CAPTION_CHARS = 40

LABELS: tuple[str, ...] = (
    "Memory",
    *_TIER_LABELS.values(),
    *(label for label, _ in IMPORTANCE_BANDS),
    "Entity",
    "HippographNamespace",
    "HippographCounter",
    "HippographAlias",  # a memory id dedup merged into another: {id, survivor}
    "LifecycleRun",  # written by the lifecycle jobs; the saved Browser queries read it
)
RELATIONSHIP_TYPES: tuple[str, ...] = tuple(t.value for t in AssociationType)
PROPERTY_KEYS: tuple[str, ...] = (
    # memories and entities
    "namespace",
    "id",
    "seq",
    "content",
    "caption",
    "kind",
    "tier",
    "session_id",
    "created_at",
    "occurred_at",
    "last_accessed_at",
    "access_count",
    "importance",
    "content_hash",
    "metadata",
    "embedding",
    "passages",
    "passage_count",
    "context_embedding",
    "archived_at",
    "archive_run",
    # associations
    "weight",
    "last_activated_at",
    "activation_count",
    "explicit",
    # bookkeeping
    "name",
    "generation",
    "value",
    "job",
    "started_at",
    "finished_at",
    "dry_run",
    "changed",
    "counts",
    "survivor",
)

# -- schema (idempotent, run when the store opens) -------------------------------------

# Keys of the parameter maps (``UNWIND $rows AS row``) that statements read besides
# the property keys above; the Cypher linter checks map keys like property keys.
# The DATETIME components bulk reads take (``m.occurred_at.epochSeconds``) read like
# property keys too.
ROW_KEYS: tuple[str, ...] = ("src", "dst", "at", "count", "type", "epochSeconds", "nanosecond")

SCHEMA: tuple[Statement, ...] = (
    _statement(
        "memory_key",
        "CREATE CONSTRAINT hippograph_memory_key IF NOT EXISTS "
        "FOR (m:Memory) REQUIRE (m.namespace, m.id) IS UNIQUE",
    ),
    _statement(
        "memory_seq",
        "CREATE CONSTRAINT hippograph_memory_seq IF NOT EXISTS "
        "FOR (m:Memory) REQUIRE m.seq IS UNIQUE",
    ),
    _statement(
        "entity_key",
        "CREATE CONSTRAINT hippograph_entity_key IF NOT EXISTS "
        "FOR (e:Entity) REQUIRE (e.namespace, e.id) IS UNIQUE",
    ),
    _statement(
        "entity_seq",
        "CREATE CONSTRAINT hippograph_entity_seq IF NOT EXISTS "
        "FOR (e:Entity) REQUIRE e.seq IS UNIQUE",
    ),
    _statement(
        "namespace_name",
        "CREATE CONSTRAINT hippograph_namespace_name IF NOT EXISTS "
        "FOR (n:HippographNamespace) REQUIRE n.name IS UNIQUE",
    ),
    _statement(
        "alias_key",
        "CREATE CONSTRAINT hippograph_alias_key IF NOT EXISTS "
        "FOR (x:HippographAlias) REQUIRE (x.namespace, x.id) IS UNIQUE",
    ),
    _statement(
        "alias_survivor",
        "CREATE INDEX hippograph_alias_survivor IF NOT EXISTS "
        "FOR (x:HippographAlias) ON (x.namespace, x.survivor)",
    ),
    _statement(
        "counter_name",
        "CREATE CONSTRAINT hippograph_counter_name IF NOT EXISTS "
        "FOR (c:HippographCounter) REQUIRE c.name IS UNIQUE",
    ),
    # chunked scans of a namespace in seq order (load, iter_*, export)
    _statement(
        "memory_namespace_seq",
        "CREATE INDEX hippograph_memory_namespace_seq IF NOT EXISTS "
        "FOR (m:Memory) ON (m.namespace, m.seq)",
    ),
    _statement(
        "entity_namespace_seq",
        "CREATE INDEX hippograph_entity_namespace_seq IF NOT EXISTS "
        "FOR (e:Entity) ON (e.namespace, e.seq)",
    ),
    # last_in_session
    _statement(
        "memory_session",
        "CREATE INDEX hippograph_memory_session IF NOT EXISTS "
        "FOR (m:Memory) ON (m.namespace, m.session_id)",
    ),
    _statement(
        "lifecycle_run",
        "CREATE INDEX hippograph_lifecycle_run IF NOT EXISTS "
        "FOR (r:LifecycleRun) ON (r.namespace, r.finished_at)",
    ),
    # search_text: Lucene BM25 over memory content
    _statement(
        "memory_content",
        "CREATE FULLTEXT INDEX hippograph_memory_content IF NOT EXISTS "
        "FOR (m:Memory) ON EACH [m.content] "
        "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english'}}",
    ),
)
AWAIT_INDEXES = _statement("await_indexes", "CALL db.awaitIndexes(300)")
# The server's version, checked when the store opens (see MIN_VERSION).
COMPONENTS = _statement(
    "components",
    "CALL dbms.components() YIELD name, versions RETURN name, versions",
)
# Readiness: one auto-commit statement, which the driver does not retry.
PING = _statement("ping", "RETURN 1 AS ok")
# The database a session without a name uses (the user's home database): resolved once,
# so that no later call pays for resolving it again.
HOME_DATABASE = _statement("home_database", "CALL db.info() YIELD name RETURN name")

# -- bookkeeping -------------------------------------------------------------------------

NAMESPACES = _statement(
    "namespaces", "MATCH (n:HippographNamespace) RETURN n.name AS name ORDER BY name"
)
GENERATION = _statement(
    "generation",
    "MATCH (n:HippographNamespace {name: $namespace}) RETURN n.generation AS generation",
    "namespace",
)
# ``SET x = x + 1`` takes the node's write lock before reading, so concurrent writers
# serialise here instead of losing an update.
BUMP_GENERATION = _statement(
    "bump_generation",
    "MERGE (n:HippographNamespace {name: $namespace}) ON CREATE SET n.generation = 0 "
    "SET n.generation = n.generation + 1 RETURN n.generation AS generation",
    "namespace",
)
RESERVE_SEQS = _statement(
    "reserve_seqs",
    "MERGE (c:HippographCounter {name: 'seq'}) ON CREATE SET c.value = 0 "
    "SET c.value = c.value + $count RETURN c.value AS last",
    "count",
)

# -- writes ------------------------------------------------------------------------------

# Moves a memory ``m`` (with ``row.tier``) to its tier label and ``row.importance`` to
# its band label; labels cannot be parameters in Cypher 5, hence one FOREACH per label.
_SET_LABELS = " ".join(
    [f"REMOVE m:{':'.join(_TIER_LABELS.values())}"]
    + [
        f"FOREACH (_ IN CASE WHEN row.tier = '{tier.value}' THEN [1] ELSE [] END | SET m:{label})"
        for tier, label in _TIER_LABELS.items()
    ]
    + [f"REMOVE m:{':'.join(label for label, _ in IMPORTANCE_BANDS)}"]
    + [
        f"FOREACH (_ IN CASE WHEN row.importance >= {low} "
        + (
            f"AND row.importance < {IMPORTANCE_BANDS[i + 1][1]} "
            if i + 1 < len(IMPORTANCE_BANDS)
            else ""
        )
        + f"THEN [1] ELSE [] END | SET m:{label})"
        for i, (label, low) in enumerate(IMPORTANCE_BANDS)
    ]
)
# Times travel as ISO 8601 strings and become DATETIME values in Cypher: the driver's
# pure-Python datetime conversion cost ~0.2 ms a value, more than the rest of a row.
_SET_TIMES = (
    "m.created_at = datetime(row.created_at), m.occurred_at = datetime(row.occurred_at), "
    "m.last_accessed_at = datetime(row.last_accessed_at), "
    "m.archived_at = datetime(row.archived_at) "
)
EXISTING_MEMORIES = _statement(
    "existing_memories",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) RETURN m.id AS id",
    "namespace",
    "ids",
)
CREATE_MEMORIES = _statement(
    "create_memories",
    "UNWIND $rows AS row CREATE (m:Memory) SET m = row, m.namespace = $namespace, "
    + _SET_TIMES
    + _SET_LABELS,
    "namespace",
    "rows",
)
EXISTING_ENTITIES = _statement(
    "existing_entities",
    "UNWIND $ids AS id MATCH (e:Entity {namespace: $namespace, id: id}) "
    "RETURN e.id AS id, e.seq AS seq",
    "namespace",
    "ids",
)
# MERGE: a concurrent writer may create the same entity first; then its seq wins.
MERGE_ENTITIES = _statement(
    "merge_entities",
    "UNWIND $rows AS row MERGE (e:Entity {namespace: $namespace, id: row.id}) "
    "ON CREATE SET e.seq = row.seq, e.content = row.content, e.caption = row.caption, "
    "e.created_at = datetime(row.created_at) "
    "RETURN e.id AS id, e.seq AS seq",
    "namespace",
    "rows",
)
# Edge ends by seq, each either a memory or an entity.
_MATCH_ENDS = (
    "OPTIONAL MATCH (am:Memory {namespace: $namespace, seq: row.src}) "
    "OPTIONAL MATCH (ae:Entity {namespace: $namespace, seq: row.src}) "
    "OPTIONAL MATCH (bm:Memory {namespace: $namespace, seq: row.dst}) "
    "OPTIONAL MATCH (be:Entity {namespace: $namespace, seq: row.dst}) "
    "WITH row, coalesce(am, ae) AS a, coalesce(bm, be) AS b "
)
# One per relationship type: types cannot be parameters in Cypher 5. A derived edge
# keeps the larger weight; an explicit one sets it.
MERGE_EDGES: dict[AssociationType, Statement] = {
    t: _statement(
        f"merge_edges_{t.value.lower()}",
        "UNWIND $rows AS row " + _MATCH_ENDS + f"MERGE (a)-[r:{t.value}]->(b) "
        "ON CREATE SET r.weight = row.weight, r.created_at = datetime(row.created_at), "
        "r.explicit = row.explicit, r.last_activated_at = datetime(row.last_activated_at), "
        "r.activation_count = row.activation_count "
        "ON MATCH SET r.weight = CASE WHEN row.explicit OR row.weight > r.weight "
        "THEN row.weight ELSE r.weight END, r.explicit = r.explicit OR row.explicit "
        "RETURN a.seq AS src, b.seq AS dst, r.weight AS weight",
        "namespace",
        "rows",
    )
    for t in AssociationType
}
FORGET = _statement(
    "forget",
    "MATCH (m:Memory {namespace: $namespace, id: $id}) WITH m, m.seq AS seq "
    "DETACH DELETE m RETURN seq",
    "namespace",
    "id",
)
RECORD_ACCESS = _statement(
    "record_access",
    "UNWIND $rows AS row MATCH (m:Memory {namespace: $namespace, seq: row.seq}) "
    "SET m.access_count = m.access_count + row.count, "
    "m.last_accessed_at = CASE WHEN m.last_accessed_at IS NULL "
    "OR m.last_accessed_at < row.at THEN row.at ELSE m.last_accessed_at END "
    "WITH m, row WHERE row.tier IS NOT NULL SET m.tier = row.tier "
    "WITH m, {tier: row.tier, importance: m.importance} AS row " + _SET_LABELS,
    "namespace",
    "rows",
)
STRENGTHEN = _statement(
    "strengthen",
    "UNWIND $rows AS row " + _MATCH_ENDS + "MATCH (a)-[r]->(b) WHERE type(r) = row.type "
    "SET r.weight = row.weight, r.last_activated_at = row.at, "
    "r.activation_count = r.activation_count + 1",
    "namespace",
    "rows",
)

# -- lifecycle changes ---------------------------------------------------------------------

REMOVE_EDGES = _statement(
    "remove_edges",
    "UNWIND $rows AS row " + _MATCH_ENDS + "MATCH (a)-[r]->(b) WHERE type(r) = row.type DELETE r",
    "namespace",
    "rows",
)
REMOVE_MEMORIES = _statement(
    "remove_memories",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) DETACH DELETE m",
    "namespace",
    "ids",
)
REPOINT_ALIASES = _statement(
    "repoint_aliases",
    "UNWIND $rows AS row "
    "MATCH (x:HippographAlias {namespace: $namespace, survivor: row.id}) "
    "SET x.survivor = row.survivor",
    "namespace",
    "rows",
)
MERGE_ALIASES = _statement(
    "merge_aliases",
    "UNWIND $rows AS row MERGE (x:HippographAlias {namespace: $namespace, id: row.id}) "
    "SET x.survivor = row.survivor",
    "namespace",
    "rows",
)
DROP_ALIASES = _statement(
    "drop_aliases",
    "UNWIND $ids AS id MATCH (x:HippographAlias {namespace: $namespace, id: id}) DELETE x",
    "namespace",
    "ids",
)
RESOLVE_ALIASES = _statement(
    "resolve_aliases",
    "UNWIND $ids AS id MATCH (x:HippographAlias {namespace: $namespace, id: id}) "
    "RETURN x.id AS id, x.survivor AS survivor",
    "namespace",
    "ids",
)
STORED_VECTORS = _statement(
    "stored_vectors",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) "
    "RETURN m.id AS id, m.seq AS seq, m.embedding AS embedding, m.passages AS passages, "
    "m.context_embedding AS context",
    "namespace",
    "ids",
)
# Every property replaced (``SET m = row``), labels moved with the tier and importance.
REPLACE_MEMORIES = _statement(
    "replace_memories",
    "UNWIND $rows AS row MATCH (m:Memory {namespace: $namespace, id: row.id}) "
    "SET m = row, m.namespace = $namespace, " + _SET_TIMES + _SET_LABELS,
    "namespace",
    "rows",
)
SET_EDGES: dict[AssociationType, Statement] = {
    t: _statement(
        f"set_edges_{t.value.lower()}",
        "UNWIND $rows AS row " + _MATCH_ENDS + f"MERGE (a)-[r:{t.value}]->(b) "
        "SET r.weight = row.weight, r.created_at = datetime(row.created_at), "
        "r.last_activated_at = datetime(row.last_activated_at), "
        "r.activation_count = row.activation_count, r.explicit = row.explicit",
        "namespace",
        "rows",
    )
    for t in AssociationType
}
RECORD_RUN = _statement(
    "record_run",
    "MERGE (r:LifecycleRun {namespace: $namespace, id: $id}) "
    "ON CREATE SET r.job = $job, r.started_at = $started_at, r.finished_at = $finished_at, "
    "r.dry_run = $dry_run, r.counts = $counts, r.changed = $changed",
    "namespace",
    "id",
    "job",
    "started_at",
    "finished_at",
    "dry_run",
    "counts",
    "changed",
)
RUNS = _statement(
    "runs",
    "MATCH (r:LifecycleRun {namespace: $namespace}) "
    "RETURN r.id AS id, r.job AS job, r.started_at AS started_at, "
    "r.finished_at AS finished_at, r.dry_run AS dry_run, r.counts AS counts "
    "ORDER BY finished_at DESC, id DESC LIMIT $limit",
    "namespace",
    "limit",
)

# -- reads -------------------------------------------------------------------------------

_MEMORY_MAP = (
    "m {.id, .namespace, .content, .kind, .tier, .session_id, "
    "created_at: toString(m.created_at), occurred_at: toString(m.occurred_at), "
    "last_accessed_at: toString(m.last_accessed_at), .access_count, .importance, "
    ".content_hash, .metadata, "
    "embedding: CASE WHEN $embeddings THEN m.embedding END, "
    "passages: CASE WHEN $embeddings THEN m.passages END, "
    "context_embedding: CASE WHEN $embeddings THEN m.context_embedding END} AS memory"
)
GET_BY_ID = _statement(
    "get_by_id",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) RETURN " + _MEMORY_MAP,
    "namespace",
    "ids",
    "embeddings",
)
GET_BY_SEQ = _statement(
    "get_by_seq",
    "UNWIND $seqs AS seq MATCH (m:Memory {namespace: $namespace, seq: seq}) "
    "RETURN m.seq AS seq, " + _MEMORY_MAP,
    "namespace",
    "seqs",
    "embeddings",
)
ITER_MEMORIES = _statement(
    "iter_memories",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "WITH m ORDER BY m.seq LIMIT $chunk RETURN m.seq AS seq, " + _MEMORY_MAP,
    "namespace",
    "after",
    "chunk",
    "embeddings",
)
NODE_SEQS = _statement(
    "node_seqs",
    "UNWIND $ids AS id "
    "OPTIONAL MATCH (m:Memory {namespace: $namespace, id: id}) "
    "OPTIONAL MATCH (e:Entity {namespace: $namespace, id: id}) "
    "WITH id, coalesce(m, e) AS n WHERE n IS NOT NULL RETURN id, n.seq AS seq",
    "namespace",
    "ids",
)
# the node (memory or entity) of each ``seq`` of the namespace, as ``n``
_NODE_OF_SEQ = (
    "OPTIONAL MATCH (m:Memory {namespace: $namespace, seq: seq}) "
    "OPTIONAL MATCH (e:Entity {namespace: $namespace, seq: seq}) "
    "WITH seq, coalesce(m, e) AS n WHERE n IS NOT NULL "
)
NODE_IDS = _statement(
    "node_ids",
    "UNWIND $seqs AS seq " + _NODE_OF_SEQ + "RETURN seq, n.id AS id",
    "namespace",
    "seqs",
)
RECALLED = _statement(
    "recalled",
    "CALL () { UNWIND $seqs AS seq MATCH (m:Memory {namespace: $namespace, seq: seq}) "
    "RETURN collect([m.seq, " + _MEMORY_MAP.removesuffix(" AS memory") + "]) AS memories } "
    "CALL () { UNWIND $named AS seq " + _NODE_OF_SEQ + "RETURN collect([seq, n.id]) AS names } "
    "RETURN memories, names",
    "namespace",
    "seqs",
    "named",
    "embeddings",
)
LAST_IN_SESSION = _statement(
    "last_in_session",
    "MATCH (m:Memory {namespace: $namespace, session_id: $session_id}) "
    "RETURN m.id AS id, m.seq AS seq ORDER BY seq DESC LIMIT 1",
    "namespace",
    "session_id",
)
# Relationships of hippograph's own: of its types, between nodes of one namespace, with a
# weight. A relationship someone drew by hand in Neo4j Browser (another type, to a node
# of their own, no weight) is not an association: reads leave it out. (``load_edges``
# keeps one of its types to a memory or entity of another namespace, for ``check`` to
# report as dangling.)
_OURS = "|".join(t.value for t in AssociationType)
_OWN_END = "(b:Memory|Entity) WHERE b.namespace = $namespace AND r.weight IS NOT NULL "
_EDGE_FIELDS = (
    "s.id AS source, d.id AS target, type(r) AS type, r.weight AS weight, "
    "toString(r.created_at) AS created_at, "
    "toString(r.last_activated_at) AS last_activated_at, "
    "r.activation_count AS activation_count, r.explicit AS explicit"
)
ASSOCIATIONS = _statement(
    "associations",
    "OPTIONAL MATCH (m:Memory {namespace: $namespace, id: $id}) "
    "OPTIONAL MATCH (e:Entity {namespace: $namespace, id: $id}) "
    "WITH coalesce(m, e) AS n WHERE n IS NOT NULL "
    f"MATCH (n)-[r:{_OURS}]-{_OWN_END}AND ($types IS NULL OR type(r) IN $types) "
    "WITH r, startNode(r) AS s, endNode(r) AS d RETURN " + _EDGE_FIELDS + " "
    "ORDER BY weight DESC, type, source, target LIMIT $limit",
    "namespace",
    "id",
    "types",
    "limit",
)
SEARCH_TEXT = _statement(
    "search_text",
    "CALL db.index.fulltext.queryNodes('hippograph_memory_content', $query) "
    "YIELD node, score WHERE node.namespace = $namespace "
    "RETURN node.seq AS seq, score ORDER BY score DESC LIMIT $limit",
    "namespace",
    "query",
    "limit",
)
# Bulk reads (the view, the vector indexes) return one record per page, its rows
# collected into lists: the driver costs ~0.1 ms per record, and a DATETIME value
# ~0.2 ms, so times come as epoch seconds. ``last`` is the page's last node seq
# (null past the end).
_EPOCH = "{t}.epochSeconds + {t}.nanosecond / 1000000000.0"
LOAD_MEMORY_NODES = _statement(
    "load_memory_nodes",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "WITH m ORDER BY m.seq LIMIT $chunk "
    "RETURN max(m.seq) AS last, collect([m.seq, "
    + _EPOCH.format(t="m.occurred_at")
    + ", "
    + _EPOCH.format(t="m.last_accessed_at")
    + ", m.access_count, m.importance, m.tier, m.session_id]) AS rows",
    "namespace",
    "after",
    "chunk",
)
LOAD_ENTITY_NODES = _statement(
    "load_entity_nodes",
    "MATCH (e:Entity) WHERE e.namespace = $namespace AND e.seq > $after "
    "WITH e ORDER BY e.seq LIMIT $chunk RETURN max(e.seq) AS last, collect(e.seq) AS rows",
    "namespace",
    "after",
    "chunk",
)
_LOAD_EDGES = (
    # the other end in any namespace: ``check`` reports one outside as dangling (the
    # view drops it)
    f"WITH a ORDER BY a.seq LIMIT $chunk OPTIONAL MATCH (a)-[r:{_OURS}]->(b:Memory|Entity) "
    "WHERE r.weight IS NOT NULL "
    "RETURN max(a.seq) AS last, "
    "collect(CASE WHEN r IS NOT NULL THEN [a.seq, b.seq, type(r), r.weight] END) AS rows"
)
LOAD_EDGES_FROM_MEMORIES = _statement(
    "load_edges_from_memories",
    "MATCH (a:Memory) WHERE a.namespace = $namespace AND a.seq > $after " + _LOAD_EDGES,
    "namespace",
    "after",
    "chunk",
)
LOAD_EDGES_FROM_ENTITIES = _statement(
    "load_edges_from_entities",
    "MATCH (a:Entity) WHERE a.namespace = $namespace AND a.seq > $after " + _LOAD_EDGES,
    "namespace",
    "after",
    "chunk",
)
ITER_EMBEDDINGS = _statement(
    "iter_embeddings",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "AND m.embedding IS NOT NULL WITH m ORDER BY m.seq LIMIT $chunk "
    "RETURN max(m.seq) AS last, collect(m.seq) AS seqs, collect(m.embedding) AS vectors",
    "namespace",
    "after",
    "chunk",
)
ITER_PASSAGES = _statement(
    "iter_passages",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "AND (m.passages IS NOT NULL OR m.context_embedding IS NOT NULL) "
    "WITH m ORDER BY m.seq LIMIT $chunk "
    "RETURN max(m.seq) AS last, "
    "collect([m.seq, m.passage_count, m.passages, m.context_embedding]) AS rows",
    "namespace",
    "after",
    "chunk",
)
ITER_CONTENTS = _statement(
    "iter_contents",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "WITH m ORDER BY m.seq LIMIT $chunk "
    "RETURN max(m.seq) AS last, collect(m.seq) AS seqs, collect(m.content) AS contents",
    "namespace",
    "after",
    "chunk",
)
ENTITIES = _statement(
    "entities",
    "MATCH (e:Entity {namespace: $namespace}) RETURN e.id AS id, e.content AS label ORDER BY e.seq",
    "namespace",
)
# Edges by chunks of source nodes in seq order (memories, then entities); a source
# without edges comes back once with nulls, so the caller still learns the chunk's end.
# Within a source by target seq and type, as SQLite gives them: an export is the same
# file from either store.
_ITER_EDGES = (
    f"WITH s ORDER BY s.seq LIMIT $chunk OPTIONAL MATCH (s)-[r:{_OURS}]->{_OWN_END}"
    "WITH s, r, b AS d RETURN s.seq AS seq, " + _EDGE_FIELDS + " ORDER BY seq, d.seq, type"
)
ITER_EDGES_FROM_MEMORIES = _statement(
    "iter_edges_from_memories",
    "MATCH (s:Memory) WHERE s.namespace = $namespace AND s.seq > $after " + _ITER_EDGES,
    "namespace",
    "after",
    "chunk",
)
ITER_EDGES_FROM_ENTITIES = _statement(
    "iter_edges_from_entities",
    "MATCH (s:Entity) WHERE s.namespace = $namespace AND s.seq > $after " + _ITER_EDGES,
    "namespace",
    "after",
    "chunk",
)
STATS_MEMORIES = _statement(
    "stats_memories",
    "MATCH (m:Memory {namespace: $namespace}) "
    "RETURN m.tier AS tier, m.kind AS kind, count(*) AS count",
    "namespace",
)
STATS_EDGES = _statement(
    "stats_edges",
    f"MATCH (a:Memory {{namespace: $namespace}})-[r:{_OURS}]->{_OWN_END}"
    "RETURN type(r) AS type, count(*) AS count "
    "UNION ALL "
    f"MATCH (a:Entity {{namespace: $namespace}})-[r:{_OURS}]->{_OWN_END}"
    "RETURN type(r) AS type, count(*) AS count",
    "namespace",
)
STATS_ENTITIES = _statement(
    "stats_entities",
    "MATCH (e:Entity {namespace: $namespace}) RETURN count(e) AS count",
    "namespace",
)


def statements() -> list[Statement]:
    """Every statement this store can issue (module constants, and dicts of them)."""
    found: list[Statement] = []
    for value in vars(sys.modules[__name__]).values():
        if isinstance(value, Statement):
            found.append(value)
        elif isinstance(value, tuple | dict):
            items = value.values() if isinstance(value, dict) else value
            found += [s for s in items if isinstance(s, Statement)]
    return sorted(found, key=lambda s: s.name)


# -- the store -----------------------------------------------------------------------------

_ROWS = 1_000  # rows per UNWIND statement
_PAGE = 20_000  # nodes per page of a bulk read
_VECTOR_PAGE = 2_000  # memories per page of vectors (the server builds each page in its heap)
_TIERS = list(Tier)
_TIER_CODE = {t.value: i for i, t in enumerate(_TIERS)}
_SPACE = re.compile(r"\s+")
_DATABASE_NOT_FOUND = "Neo.ClientError.Database.DatabaseNotFound"
# A transaction the server ended at its timeout: TransactionTimedOut(ClientConfiguration)
# while it ran, LockClientStopped while it waited for a lock.
_ROWS_PER_TIMEOUT = 1_000  # a write gets the transaction timeout per this many rows
_TIMED_OUT = (
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.LockClientStopped",
)


# The oldest server this store supports: the Cypher it sends (CALL subqueries with a
# scope clause, ``CALL ... IN TRANSACTIONS`` in tests) and the schema it creates.
MIN_VERSION = (5, 26)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"5.26.30"`` -> ``(5, 26, 30)``; calendar versions (``"2025.01.0"``) compare above
    every 5.x. A part's trailing non-digits (``"0-aura"``) are ignored; a version with
    no leading number is ``()``, below everything."""
    parts: list[int] = []
    for part in version.strip().split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def check_version(version: str, uri: str) -> None:
    """Refuse a server older than :data:`MIN_VERSION`, naming both versions."""
    if version_tuple(version) < MIN_VERSION:
        minimum = ".".join(map(str, MIN_VERSION))
        raise StoreUnavailable(
            f"Neo4j at {uri} is version {version or 'unknown'}; hippograph needs Neo4j "
            f"{minimum} or later (NEO4J_URI)"
        )


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
        *,
        database: str | None = None,
        driver: Any = None,
        statement_trace: Path | None = None,
        connection_timeout: float | None = None,
        acquisition_timeout: float | None = None,
        retry_time: float | None = None,
        transaction_timeout: float | None = None,
    ) -> None:
        import neo4j

        self._neo4j = neo4j
        self._uri = uri
        self._database = database
        self._named = database  # as configured, for messages
        self._tx_timeout = transaction_timeout
        self._trace = statement_trace
        self._traced: set[str] = set()
        if driver is None:
            auth = (user, password or "") if user is not None else None
            timeouts: dict[str, Any] = {
                "connection_timeout": connection_timeout,
                "connection_acquisition_timeout": acquisition_timeout,
                "max_transaction_retry_time": retry_time,
            }
            driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                # the server's notifications ("property key does not exist" on an empty
                # database, ...) are about our fixed statements, not the user's data
                notifications_min_severity="OFF",
                **{k: v for k, v in timeouts.items() if v is not None},
            )
        self._driver = driver
        try:
            try:
                self._driver.verify_connectivity()
            except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as exc:
                raise self._unavailable(exc) or exc from None
            if database is None:
                self._database = self._read(HOME_DATABASE)[0]["name"]
            components = self._read(COMPONENTS)
            kernel = next((r for r in components if r["name"] == "Neo4j Kernel"), None)
            check_version(kernel["versions"][0] if kernel else "", uri)
            for statement in SCHEMA:
                self._execute(statement, write=True)
            self._execute(AWAIT_INDEXES, write=True)
        except BaseException:
            self._driver.close()
            raise

    # -- plumbing -------------------------------------------------------------------

    @staticmethod
    def _params(statement: Statement, params: dict[str, Any]) -> dict[str, Any]:
        if params.keys() != statement.params:
            raise TypeError(
                f"statement {statement.name} takes {sorted(statement.params)}, got {sorted(params)}"
            )
        return params

    def _record(self, statement: Statement) -> None:
        if self._trace is not None and statement.name not in self._traced:
            self._traced.add(statement.name)
            with self._trace.open("a", encoding="utf-8") as trace:
                trace.write(statement.name + "\n")

    def _unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        """The ``StoreUnavailable`` a driver error means, or None for any other error
        (a constraint, a bug in a statement)."""
        errors = self._neo4j.exceptions
        where = f"Neo4j at {self._uri}"
        if isinstance(exc, errors.AuthError):
            return StoreUnavailable(
                f"{where} refused the credentials: check NEO4J_USER and NEO4J_PASSWORD "
                f"({exc.message or type(exc).__name__})"
            )
        if isinstance(exc, errors.ClientError) and exc.code == _DATABASE_NOT_FOUND:
            return StoreUnavailable(
                f"{where} has no database {self._named!r}: check NEO4J_DATABASE"
            )
        if isinstance(exc, errors.ClientError) and (exc.code or "").startswith(_TIMED_OUT):
            within = f" within {self._tx_timeout:g} s" if self._tx_timeout else ""
            return StoreUnavailable(
                f"{where} ended a transaction that did not finish{within} (per thousand "
                "rows written; HIPPOGRAPH_NEO4J_TRANSACTION_TIMEOUT_S); it was rolled "
                "back, retry"
            )
        if isinstance(exc, errors.IncompleteCommit):
            return StoreUnavailable(
                f"{where}: the connection was lost while a write committed; it may or may "
                "not have been applied (retry with the same ids to find out)"
            )
        if isinstance(
            exc,
            errors.ServiceUnavailable
            | errors.SessionExpired
            | errors.ConnectionPoolError
            | errors.TransientError,
        ):
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            reason = " ".join(reason.split())  # the driver's messages span lines
            return StoreUnavailable(
                f"{where} is unavailable (NEO4J_URI): {reason}; retry once it is back"
            )
        return None

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Driver errors that mean the store cannot be used now, as StoreUnavailable."""
        try:
            yield
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError) as exc:
            mapped = self._unavailable(exc)
            if mapped is None:
                raise
            raise mapped from None

    def _session(self) -> Any:
        # the driver's bookmark manager: what one call wrote, the next one reads (also
        # on a cluster, whichever member serves it)
        return self._driver.session(
            database=self._database,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        )

    def _unit(self, work: Callable[[Any], Any], rows: int = 0) -> Callable[[Any], Any]:
        """``work`` as a unit of work the server aborts after the transaction timeout:
        the timeout for each started thousand ``rows`` it writes (an import of a whole
        namespace is one transaction), once for a read."""
        if self._tx_timeout is None:
            return work
        timeout = self._tx_timeout * max(1, -(-rows // _ROWS_PER_TIMEOUT))
        return cast(Callable[[Any], Any], self._neo4j.unit_of_work(timeout=timeout)(work))

    def _execute(self, statement: Statement, *, write: bool = False, **params: Any) -> list[Any]:
        """Run one statement in its own managed (retried) transaction; its records."""
        self._record(statement)
        values = self._params(statement, params)

        def work(tx: Any) -> list[Any]:
            return list(tx.run(statement.cypher, values))

        with self._mapped(), self._session() as session:
            run = session.execute_write if write else session.execute_read
            return cast(list[Any], run(self._unit(work)))

    def _read(self, statement: Statement, **params: Any) -> list[Any]:
        """One read statement's records, in one network round trip: an auto-commit
        transaction (RUN and PULL sent together) rather than a managed one, whose BEGIN
        and COMMIT are two round trips more (a recall's fetch: 2.4 against 9.8 ms at 20k
        memories on loopback). A failure the driver deems retryable (a restart, a
        leader switch) runs it again as a managed transaction, with the driver's
        retries."""
        self._record(statement)
        values = self._params(statement, params)
        query = self._neo4j.Query(statement.cypher, timeout=self._tx_timeout)
        errors = self._neo4j.exceptions
        with self._mapped():
            try:
                with self._session() as session:
                    return list(session.run(query, values))
            except (errors.Neo4jError, errors.DriverError) as exc:
                if not exc.is_retryable():
                    raise
        return self._execute(statement, **params)

    def _transaction(self, work: Callable[[Callable[..., list[Any]]], Any], rows: int = 0) -> Any:
        """Run ``work(run)`` in one managed write transaction of about ``rows`` rows,
        retried on transient errors; ``run(statement, **params)`` returns a statement's
        records."""

        def attempt(tx: Any) -> Any:
            def run(statement: Statement, **params: Any) -> list[Any]:
                self._record(statement)
                return list(tx.run(statement.cypher, self._params(statement, params)))

            return work(run)

        with self._mapped(), self._session() as session:
            try:
                return session.execute_write(self._unit(attempt, rows))
            except self._neo4j.exceptions.ConstraintError as exc:
                raise DuplicateId("id", f"a node with this id already exists: {exc}") from None

    def close(self) -> None:
        self._driver.close()

    def ping(self) -> None:
        """One trivial statement, not retried: ``StoreUnavailable`` at once (within the
        connection timeouts) when the server or its database cannot be used."""
        self._record(PING)
        with self._mapped(), self._driver.session(database=self._database) as session:
            session.run(PING.cypher).consume()

    def namespaces(self) -> list[str]:
        return [r["name"] for r in self._read(NAMESPACES)]

    def generation(self, namespace: str) -> int:
        rows = self._read(GENERATION, namespace=namespace)
        return int(rows[0]["generation"]) if rows else 0

    # -- writes ---------------------------------------------------------------------

    def write(self, namespace: str, batch: WriteBatch) -> WriteResult:
        def work(run: Callable[..., list[Any]]) -> WriteResult:
            seqs: dict[str, int] = {}
            new_nodes: list[str] = []
            generation = int(run(BUMP_GENERATION, namespace=namespace)[0]["generation"])
            if batch.memories:
                ids = [m.id for m in batch.memories]
                for part in _chunks(ids):
                    taken = run(EXISTING_MEMORIES, namespace=namespace, ids=list(part))
                    if taken:
                        raise DuplicateId(
                            "id",
                            f"memory {taken[0]['id']!r} already exists in namespace {namespace!r}",
                        )
                first = _reserve(run, len(ids))
                rows = []
                for offset, memory in enumerate(batch.memories):
                    seqs[memory.id] = first + offset
                    new_nodes.append(memory.id)
                    rows.append(_memory_row(memory, first + offset))
                for part in _chunks(rows):
                    run(CREATE_MEMORIES, namespace=namespace, rows=list(part))
                    run(DROP_ALIASES, namespace=namespace, ids=[r["id"] for r in part])
            if batch.entities:
                self._write_entities(run, namespace, batch.entities, seqs, new_nodes)
            edges = self._write_edges(run, namespace, batch.edges, seqs)
            return WriteResult(seqs=seqs, new_nodes=new_nodes, edges=edges, generation=generation)

        rows = len(batch.memories) + len(batch.entities) + len(batch.edges)
        result: WriteResult = self._transaction(work, rows)
        return result

    @staticmethod
    def _write_entities(
        run: Callable[..., list[Any]],
        namespace: str,
        entities: dict[str, str],
        seqs: dict[str, int],
        new_nodes: list[str],
    ) -> None:
        ids = [ENTITY_PREFIX + key for key in entities]
        existing: dict[str, int] = {}
        for part in _chunks(ids):
            for r in run(EXISTING_ENTITIES, namespace=namespace, ids=list(part)):
                existing[r["id"]] = int(r["seq"])
        seqs.update(existing)
        missing = [(i, entities[i[len(ENTITY_PREFIX) :]]) for i in ids if i not in existing]
        if not missing:
            return
        first = _reserve(run, len(missing))
        now = datetime.now(UTC)
        rows = [
            {
                "id": i,
                "seq": first + n,
                "content": label,
                "caption": _caption(label),
                "created_at": _iso(now),
            }
            for n, (i, label) in enumerate(missing)
        ]
        for part in _chunks(rows):
            for r in run(MERGE_ENTITIES, namespace=namespace, rows=list(part)):
                seqs[r["id"]] = int(r["seq"])
        new_nodes += [str(row["id"]) for row in rows if seqs[str(row["id"])] == row["seq"]]

    def _write_edges(
        self,
        run: Callable[..., list[Any]],
        namespace: str,
        edges: Sequence[Association],
        seqs: dict[str, int],
    ) -> list[tuple[int, int, int, float]]:
        _resolve_ends(run, namespace, edges, seqs)
        # One edge per (source, target, type): within a batch the strongest wins.
        unique: dict[tuple[int, int, AssociationType], Association] = {}
        for edge in edges:
            key = (seqs[edge.source], seqs[edge.target], edge.type)
            if key[0] == key[1]:
                continue
            held = unique.get(key)
            if held is None or edge.weight > held.weight or edge.explicit:
                unique[key] = edge
        now = datetime.now(UTC)
        by_type: dict[AssociationType, list[dict[str, Any]]] = {}
        for (src, dst, type_), edge in unique.items():
            by_type.setdefault(type_, []).append(
                {
                    "src": src,
                    "dst": dst,
                    "weight": float(edge.weight),
                    "created_at": _iso(edge.created_at or now),
                    "explicit": bool(edge.explicit),
                    "last_activated_at": _iso(edge.last_activated_at),
                    "activation_count": int(edge.activation_count),
                }
            )
        stored: list[tuple[int, int, int, float]] = []
        for type_, rows in by_type.items():
            for part in _chunks(rows):
                for r in run(MERGE_EDGES[type_], namespace=namespace, rows=list(part)):
                    stored.append((int(r["src"]), int(r["dst"]), type_.code, float(r["weight"])))
        return stored

    def forget(self, namespace: str, memory_id: str) -> tuple[int, int] | None:
        def work(run: Callable[..., list[Any]]) -> tuple[int, int] | None:
            rows = run(FORGET, namespace=namespace, id=memory_id)
            if not rows:
                return None
            return int(rows[0]["seq"]), int(run(BUMP_GENERATION, namespace=namespace)[0][0])

        result: tuple[int, int] | None = self._transaction(work)
        return result

    def apply_changes(self, namespace: str, changes: ChangeBatch) -> int:
        def work(run: Callable[..., list[Any]]) -> int:
            generation = int(run(BUMP_GENERATION, namespace=namespace)[0]["generation"])
            if changes.removed_edges:
                ends = sorted({e for s, d, _ in changes.removed_edges for e in (s, d)})
                seqs = _node_seqs(run, namespace, ends)
                rows = [
                    {"src": seqs[s], "dst": seqs[d], "type": t.value}
                    for s, d, t in changes.removed_edges
                    if s in seqs and d in seqs
                ]
                for part in _chunks(rows):
                    run(REMOVE_EDGES, namespace=namespace, rows=list(part))
            for part in _chunks(changes.removed_memories):
                run(REMOVE_MEMORIES, namespace=namespace, ids=list(part))
            alias_rows = [{"id": m, "survivor": s} for m, s in changes.aliases.items()]
            for part in _chunks(alias_rows):
                run(REPOINT_ALIASES, namespace=namespace, rows=list(part))
                run(MERGE_ALIASES, namespace=namespace, rows=list(part))
            if changes.new_memories:
                ids = [m.id for m in changes.new_memories]
                for part in _chunks(ids):
                    taken = run(EXISTING_MEMORIES, namespace=namespace, ids=list(part))
                    if taken:
                        raise DuplicateId(
                            "id",
                            f"memory {taken[0]['id']!r} already exists in namespace {namespace!r}",
                        )
                first = _reserve(run, len(ids))
                rows = [_memory_row(m, first + i) for i, m in enumerate(changes.new_memories)]
                for part in _chunks(rows):
                    run(CREATE_MEMORIES, namespace=namespace, rows=list(part))
                    run(DROP_ALIASES, namespace=namespace, ids=[r["id"] for r in part])
            if changes.memories:
                self._replace_memories(run, namespace, changes.memories)
            if changes.edges:
                self._set_edges(run, namespace, changes.edges)
            return generation

        generation: int = self._transaction(work, _change_rows(changes))
        return generation

    @staticmethod
    def _replace_memories(
        run: Callable[..., list[Any]], namespace: str, memories: Sequence[Memory]
    ) -> None:
        stored: dict[str, Any] = {}
        for part in _chunks([m.id for m in memories]):
            for r in run(STORED_VECTORS, namespace=namespace, ids=list(part)):
                stored[r["id"]] = r
        missing = [m.id for m in memories if m.id not in stored]
        if missing:
            raise NotFound(f"memory {missing[0]!r} does not exist in namespace {namespace!r}")
        rows = [_memory_row(m, int(stored[m.id]["seq"])) for m in memories]
        # New vectors, new seq: the derived indexes catch up by seq.
        moved = [
            row
            for row in rows
            if (row["embedding"], row["passages"], row["context_embedding"])
            != (
                stored[row["id"]]["embedding"],
                stored[row["id"]]["passages"],
                stored[row["id"]]["context"],
            )
        ]
        if moved:
            first = _reserve(run, len(moved))
            for offset, row in enumerate(moved):
                row["seq"] = first + offset
        for part in _chunks(rows):
            run(REPLACE_MEMORIES, namespace=namespace, rows=list(part))

    @staticmethod
    def _set_edges(
        run: Callable[..., list[Any]], namespace: str, edges: Sequence[Association]
    ) -> None:
        seqs = _resolve_ends(run, namespace, edges, {})
        now = datetime.now(UTC)
        by_type: dict[AssociationType, list[dict[str, Any]]] = {}
        for e in edges:
            if seqs[e.source] == seqs[e.target]:
                continue
            by_type.setdefault(e.type, []).append(
                {
                    "src": seqs[e.source],
                    "dst": seqs[e.target],
                    "weight": float(e.weight),
                    "created_at": _iso(e.created_at or now),
                    "last_activated_at": _iso(e.last_activated_at),
                    "activation_count": int(e.activation_count),
                    "explicit": bool(e.explicit),
                }
            )
        for type_, rows in by_type.items():
            for part in _chunks(rows):
                run(SET_EDGES[type_], namespace=namespace, rows=list(part))

    def resolve_aliases(self, namespace: str, ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in _chunks(list(ids)):
            for r in self._read(RESOLVE_ALIASES, namespace=namespace, ids=list(part)):
                found[r["id"]] = r["survivor"]
        return found

    def record_run(self, namespace: str, run: RunRecord) -> None:
        self._execute(
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
            started, finished = _native(r["started_at"]), _native(r["finished_at"])
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
            for part in _chunks(access_rows):
                run(RECORD_ACCESS, namespace=namespace, rows=list(part))
            for part in _chunks(edge_rows):
                run(STRENGTHEN, namespace=namespace, rows=list(part))
            return int(run(BUMP_GENERATION, namespace=namespace)[0]["generation"])

        generation: int = self._transaction(work)
        return generation

    # -- reads ----------------------------------------------------------------------

    def seqs_of(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        return _node_seqs(self._read, namespace, ids)

    def node_ids(self, namespace: str, seqs: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for part in _chunks([int(s) for s in seqs]):
            for r in self._read(NODE_IDS, namespace=namespace, seqs=list(part)):
                found[int(r["seq"])] = r["id"]
        return found

    def get(self, namespace: str, ids: Sequence[str], *, embeddings: bool = False) -> list[Memory]:
        by_id: dict[str, Memory] = {}
        for part in _chunks(list(ids)):
            for r in self._read(
                GET_BY_ID, namespace=namespace, ids=list(part), embeddings=embeddings
            ):
                memory = _memory_from_map(r["memory"])
                by_id[memory.id] = memory
        return [by_id[i] for i in ids if i in by_id]

    def get_by_seq(
        self, namespace: str, seqs: Sequence[int], *, embeddings: bool = False
    ) -> dict[int, Memory]:
        found: dict[int, Memory] = {}
        for part in _chunks([int(s) for s in seqs]):
            rows = self._read(
                GET_BY_SEQ, namespace=namespace, seqs=list(part), embeddings=embeddings
            )
            for r in rows:
                found[int(r["seq"])] = _memory_from_map(r["memory"])
        return found

    def recalled(
        self, namespace: str, seqs: Sequence[int], named: Sequence[int]
    ) -> tuple[dict[int, Memory], dict[int, str]]:
        seqs, named = [int(s) for s in seqs], [int(s) for s in named]
        if len(seqs) > _ROWS or len(named) > _ROWS:  # more than a recall asks for
            return self.get_by_seq(namespace, seqs), self.node_ids(namespace, named)
        row = self._read(RECALLED, namespace=namespace, seqs=seqs, named=named, embeddings=False)[0]
        memories = {int(seq): _memory_from_map(memory) for seq, memory in row["memories"]}
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
        return [_association_from_record(r) for r in rows]

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
            yield [_memory_from_map(r["memory"]) for r in rows]
            after = int(rows[-1]["seq"])

    def entities(self, namespace: str) -> dict[str, str]:
        return {r["id"]: r["label"] for r in self._read(ENTITIES, namespace=namespace)}

    def iter_associations(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[list[Association]]:
        for statement in (ITER_EDGES_FROM_MEMORIES, ITER_EDGES_FROM_ENTITIES):
            for rows in self._pages(statement, namespace, -1, chunk):
                edges = [_association_from_record(r) for r in rows if r["type"] is not None]
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


# -- conversions ---------------------------------------------------------------------------


def _change_rows(changes: ChangeBatch) -> int:
    return (
        len(changes.new_memories)
        + len(changes.memories)
        + len(changes.edges)
        + len(changes.removed_edges)
        + len(changes.removed_memories)
        + len(changes.aliases)
    )


def _chunks(rows: Sequence[Any], size: int = _ROWS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _node_seqs(run: Callable[..., list[Any]], namespace: str, ids: Sequence[str]) -> dict[str, int]:
    seqs: dict[str, int] = {}
    for part in _chunks(list(ids)):
        for r in run(NODE_SEQS, namespace=namespace, ids=list(part)):
            seqs[r["id"]] = int(r["seq"])
    return seqs


def _resolve_ends(
    run: Callable[..., list[Any]],
    namespace: str,
    edges: Sequence[Association],
    seqs: dict[str, int],
) -> dict[str, int]:
    """``seqs`` completed with the seq of every edge end it lacks; ``NotFound`` naming
    the first (sorted) end that does not exist."""
    missing = sorted({e for edge in edges for e in (edge.source, edge.target)} - seqs.keys())
    found = _node_seqs(run, namespace, missing)
    absent = [e for e in missing if e not in found]
    if absent:
        raise NotFound(
            f"association endpoint {absent[0]!r} does not exist in namespace {namespace!r}"
        )
    seqs.update(found)
    return seqs


def _reserve(run: Callable[..., list[Any]], count: int) -> int:
    """Reserve ``count`` consecutive seqs; the first of them."""
    last = int(run(RESERVE_SEQS, count=count)[0]["last"])
    return last - count + 1


def _caption(content: str) -> str:
    text = _SPACE.sub(" ", content).strip()
    return text if len(text) <= CAPTION_CHARS else text[: CAPTION_CHARS - 1] + "…"


def _native(value: Any) -> datetime | None:
    """A driver temporal value, or the ISO string of one (reads return ``toString``),
    or None, as an aware Python datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    native = value.to_native() if hasattr(value, "to_native") else value
    assert isinstance(native, datetime)
    return native


class _Floats(list[float]):
    """A vector parameter. The driver formats every statement's parameters for its debug
    log even when nothing logs (``Bolt5x5.run``); the default repr of a 384-float list
    cost more than sending it."""

    def __repr__(self) -> str:
        return f"<{len(self)} floats>"


def _vector(value: np.ndarray | None) -> list[float] | None:
    return None if value is None else _Floats(np.asarray(value, np.float32).ravel().tolist())


def _iso(value: datetime | None) -> str | None:
    """A parameter time: ISO 8601, made a DATETIME by ``datetime()`` in the statement."""
    return None if value is None else value.isoformat()


def _archived(memory: Memory) -> tuple[datetime | None, str | None]:
    """(archived_at, archive file) of an archived stub, for Browser queries; the
    lifecycle's archive job writes them into the stub's metadata."""
    ref = memory.metadata.get("archive") if memory.embedding is None else None
    if not isinstance(ref, dict):
        return None, None
    at, file = ref.get("at"), ref.get("file")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    return when, file if isinstance(file, str) else None


def _memory_row(memory: Memory, seq: int) -> dict[str, Any]:
    passages = memory.passages if memory.passages is not None and len(memory.passages) else None
    archived_at, archive_run = _archived(memory)
    return {
        "id": memory.id,
        "seq": seq,
        "content": memory.content,
        "caption": _caption(memory.content),
        "kind": memory.kind.value,
        "tier": memory.tier.value,
        "session_id": memory.session_id,
        "created_at": _iso(memory.created_at),
        "occurred_at": _iso(memory.when),
        "last_accessed_at": _iso(memory.last_accessed_at),
        "access_count": int(memory.access_count),
        "importance": float(memory.importance),
        "content_hash": memory.content_hash,
        "metadata": json.dumps(memory.metadata, ensure_ascii=False, sort_keys=True),
        "embedding": _vector(memory.embedding),
        "passages": _vector(passages),
        "passage_count": 0 if passages is None else len(passages),
        "context_embedding": _vector(memory.context_embedding),
        "archived_at": _iso(archived_at),
        "archive_run": archive_run,
    }


def _memory_from_map(m: dict[str, Any]) -> Memory:
    created = _native(m["created_at"])
    assert created is not None
    memory = Memory(
        id=m["id"],
        namespace=m["namespace"],
        content=m["content"],
        kind=MemoryKind(m["kind"]),
        tier=Tier(m["tier"]),
        session_id=m["session_id"],
        created_at=created,
        occurred_at=_native(m["occurred_at"]),
        last_accessed_at=_native(m["last_accessed_at"]),
        access_count=int(m["access_count"]),
        importance=float(m["importance"]),
        content_hash=m["content_hash"] or "",
        metadata=json.loads(m["metadata"]) if m["metadata"] else {},
    )
    if m.get("embedding") is not None:
        memory.embedding = np.array(m["embedding"], dtype=np.float32)
        if m.get("passages") is not None:
            memory.passages = np.array(m["passages"], dtype=np.float32).reshape(
                -1, len(memory.embedding)
            )
        if m.get("context_embedding") is not None:
            memory.context_embedding = np.array(m["context_embedding"], dtype=np.float32)
    return memory


def _association_from_record(r: Any) -> Association:
    created = _native(r["created_at"])
    assert created is not None
    return Association(
        source=r["source"],
        target=r["target"],
        type=AssociationType(r["type"]),
        weight=float(r["weight"]),
        created_at=created,
        last_activated_at=_native(r["last_activated_at"]),
        activation_count=int(r["activation_count"] or 0),
        explicit=bool(r["explicit"]),
    )
