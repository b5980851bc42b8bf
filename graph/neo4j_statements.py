"""The Cypher of the Neo4j store: :class:`Statement`, the graph's data model (labels,
relationship types, property keys) and the statements that create the schema, keep the
bookkeeping and write; the statements that read are in
:mod:`hippograph.graph.neo4j_read_statements`.

Every statement is a module-level :class:`Statement` constant (or a dict of them, one a
relationship type) with declared parameters; none is built from values, so
:func:`hippograph.graph.neo4j_store.statements` enumerates every statement the store can
issue (``make lint-cypher`` checks each with Neo4j's own Cypher front end, against
:data:`LABELS`, :data:`RELATIONSHIP_TYPES` and :data:`PROPERTY_KEYS`).

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
"""

from __future__ import annotations

from dataclasses import dataclass

from hippograph.graph.model import AssociationType, Tier

__all__ = [
    "AWAIT_INDEXES",
    "BUMP_GENERATION",
    "CAPTION_CHARS",
    "COMPONENTS",
    "CREATE_MEMORIES",
    "DROP_ALIASES",
    "EXISTING_ENTITIES",
    "EXISTING_MEMORIES",
    "FORGET",
    "GENERATION",
    "HOME_DATABASE",
    "IMPORTANCE_BANDS",
    "LABELS",
    "MERGE_ALIASES",
    "MERGE_EDGES",
    "MERGE_ENTITIES",
    "NAMESPACES",
    "PING",
    "PROPERTY_KEYS",
    "RECORD_ACCESS",
    "RECORD_RUN",
    "RELATIONSHIP_TYPES",
    "REMOVE_EDGES",
    "REMOVE_MEMORIES",
    "REPLACE_MEMORIES",
    "REPOINT_ALIASES",
    "RESERVE_SEQS",
    "RESOLVE_ALIASES",
    "ROW_KEYS",
    "RUNS",
    "SCHEMA",
    "SET_EDGES",
    "STORED_VECTORS",
    "STRENGTHEN",
    "Statement",
    "statement",
]


@dataclass(frozen=True, slots=True)
class Statement:
    """One Cypher statement and the parameters it takes (exactly these, always)."""

    name: str
    cypher: str
    params: frozenset[str] = frozenset()


def statement(name: str, cypher: str, *params: str) -> Statement:
    """A :class:`Statement` taking ``params``, its Cypher's whitespace collapsed."""
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
    statement(
        "memory_key",
        "CREATE CONSTRAINT hippograph_memory_key IF NOT EXISTS "
        "FOR (m:Memory) REQUIRE (m.namespace, m.id) IS UNIQUE",
    ),
    statement(
        "memory_seq",
        "CREATE CONSTRAINT hippograph_memory_seq IF NOT EXISTS "
        "FOR (m:Memory) REQUIRE m.seq IS UNIQUE",
    ),
    statement(
        "entity_key",
        "CREATE CONSTRAINT hippograph_entity_key IF NOT EXISTS "
        "FOR (e:Entity) REQUIRE (e.namespace, e.id) IS UNIQUE",
    ),
    statement(
        "entity_seq",
        "CREATE CONSTRAINT hippograph_entity_seq IF NOT EXISTS "
        "FOR (e:Entity) REQUIRE e.seq IS UNIQUE",
    ),
    statement(
        "namespace_name",
        "CREATE CONSTRAINT hippograph_namespace_name IF NOT EXISTS "
        "FOR (n:HippographNamespace) REQUIRE n.name IS UNIQUE",
    ),
    statement(
        "alias_key",
        "CREATE CONSTRAINT hippograph_alias_key IF NOT EXISTS "
        "FOR (x:HippographAlias) REQUIRE (x.namespace, x.id) IS UNIQUE",
    ),
    statement(
        "alias_survivor",
        "CREATE INDEX hippograph_alias_survivor IF NOT EXISTS "
        "FOR (x:HippographAlias) ON (x.namespace, x.survivor)",
    ),
    statement(
        "counter_name",
        "CREATE CONSTRAINT hippograph_counter_name IF NOT EXISTS "
        "FOR (c:HippographCounter) REQUIRE c.name IS UNIQUE",
    ),
    # chunked scans of a namespace in seq order (load, iter_*, export)
    statement(
        "memory_namespace_seq",
        "CREATE INDEX hippograph_memory_namespace_seq IF NOT EXISTS "
        "FOR (m:Memory) ON (m.namespace, m.seq)",
    ),
    statement(
        "entity_namespace_seq",
        "CREATE INDEX hippograph_entity_namespace_seq IF NOT EXISTS "
        "FOR (e:Entity) ON (e.namespace, e.seq)",
    ),
    # last_in_session
    statement(
        "memory_session",
        "CREATE INDEX hippograph_memory_session IF NOT EXISTS "
        "FOR (m:Memory) ON (m.namespace, m.session_id)",
    ),
    # by_content_hash: idempotent remember
    statement(
        "memory_content_hash",
        "CREATE INDEX hippograph_memory_content_hash IF NOT EXISTS "
        "FOR (m:Memory) ON (m.namespace, m.content_hash)",
    ),
    statement(
        "lifecycle_run",
        "CREATE INDEX hippograph_lifecycle_run IF NOT EXISTS "
        "FOR (r:LifecycleRun) ON (r.namespace, r.finished_at)",
    ),
    # search_text: Lucene BM25 over memory content
    statement(
        "memory_content",
        "CREATE FULLTEXT INDEX hippograph_memory_content IF NOT EXISTS "
        "FOR (m:Memory) ON EACH [m.content] "
        "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english'}}",
    ),
)
AWAIT_INDEXES = statement("await_indexes", "CALL db.awaitIndexes(300)")
# The server's version, checked when the store opens (see MIN_VERSION).
COMPONENTS = statement(
    "components",
    "CALL dbms.components() YIELD name, versions RETURN name, versions",
)
# Readiness: one auto-commit statement, which the driver does not retry.
PING = statement("ping", "RETURN 1 AS ok")
# The database a session without a name uses (the user's home database): resolved once,
# so that no later call pays for resolving it again.
HOME_DATABASE = statement("home_database", "CALL db.info() YIELD name RETURN name")

# -- bookkeeping -------------------------------------------------------------------------

NAMESPACES = statement(
    "namespaces", "MATCH (n:HippographNamespace) RETURN n.name AS name ORDER BY name"
)
GENERATION = statement(
    "generation",
    "MATCH (n:HippographNamespace {name: $namespace}) RETURN n.generation AS generation",
    "namespace",
)
# ``SET x = x + 1`` takes the node's write lock before reading, so concurrent writers
# serialise here instead of losing an update.
BUMP_GENERATION = statement(
    "bump_generation",
    "MERGE (n:HippographNamespace {name: $namespace}) ON CREATE SET n.generation = 0 "
    "SET n.generation = n.generation + 1 RETURN n.generation AS generation",
    "namespace",
)
RESERVE_SEQS = statement(
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
EXISTING_MEMORIES = statement(
    "existing_memories",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) RETURN m.id AS id",
    "namespace",
    "ids",
)
CREATE_MEMORIES = statement(
    "create_memories",
    "UNWIND $rows AS row CREATE (m:Memory) SET m = row, m.namespace = $namespace, "
    + _SET_TIMES
    + _SET_LABELS,
    "namespace",
    "rows",
)
EXISTING_ENTITIES = statement(
    "existing_entities",
    "UNWIND $ids AS id MATCH (e:Entity {namespace: $namespace, id: id}) "
    "RETURN e.id AS id, e.seq AS seq",
    "namespace",
    "ids",
)
# MERGE: a concurrent writer may create the same entity first; then its seq wins.
MERGE_ENTITIES = statement(
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
    t: statement(
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
FORGET = statement(
    "forget",
    "MATCH (m:Memory {namespace: $namespace, id: $id}) WITH m, m.seq AS seq "
    "DETACH DELETE m RETURN seq",
    "namespace",
    "id",
)
RECORD_ACCESS = statement(
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
STRENGTHEN = statement(
    "strengthen",
    "UNWIND $rows AS row " + _MATCH_ENDS + "MATCH (a)-[r]->(b) WHERE type(r) = row.type "
    "SET r.weight = row.weight, r.last_activated_at = row.at, "
    "r.activation_count = r.activation_count + 1",
    "namespace",
    "rows",
)

# -- lifecycle changes ---------------------------------------------------------------------

REMOVE_EDGES = statement(
    "remove_edges",
    "UNWIND $rows AS row " + _MATCH_ENDS + "MATCH (a)-[r]->(b) WHERE type(r) = row.type DELETE r",
    "namespace",
    "rows",
)
REMOVE_MEMORIES = statement(
    "remove_memories",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) DETACH DELETE m",
    "namespace",
    "ids",
)
REPOINT_ALIASES = statement(
    "repoint_aliases",
    "UNWIND $rows AS row "
    "MATCH (x:HippographAlias {namespace: $namespace, survivor: row.id}) "
    "SET x.survivor = row.survivor",
    "namespace",
    "rows",
)
MERGE_ALIASES = statement(
    "merge_aliases",
    "UNWIND $rows AS row MERGE (x:HippographAlias {namespace: $namespace, id: row.id}) "
    "SET x.survivor = row.survivor",
    "namespace",
    "rows",
)
DROP_ALIASES = statement(
    "drop_aliases",
    "UNWIND $ids AS id MATCH (x:HippographAlias {namespace: $namespace, id: id}) DELETE x",
    "namespace",
    "ids",
)
RESOLVE_ALIASES = statement(
    "resolve_aliases",
    "UNWIND $ids AS id MATCH (x:HippographAlias {namespace: $namespace, id: id}) "
    "RETURN x.id AS id, x.survivor AS survivor",
    "namespace",
    "ids",
)
STORED_VECTORS = statement(
    "stored_vectors",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) "
    "RETURN m.id AS id, m.seq AS seq, m.embedding AS embedding, m.passages AS passages, "
    "m.context_embedding AS context",
    "namespace",
    "ids",
)
# Every property replaced (``SET m = row``), labels moved with the tier and importance.
REPLACE_MEMORIES = statement(
    "replace_memories",
    "UNWIND $rows AS row MATCH (m:Memory {namespace: $namespace, id: row.id}) "
    "SET m = row, m.namespace = $namespace, " + _SET_TIMES + _SET_LABELS,
    "namespace",
    "rows",
)
SET_EDGES: dict[AssociationType, Statement] = {
    t: statement(
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
RECORD_RUN = statement(
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
RUNS = statement(
    "runs",
    "MATCH (r:LifecycleRun {namespace: $namespace}) "
    "RETURN r.id AS id, r.job AS job, r.started_at AS started_at, "
    "r.finished_at AS finished_at, r.dry_run AS dry_run, r.counts AS counts "
    "ORDER BY finished_at DESC, id DESC LIMIT $limit",
    "namespace",
    "limit",
)
