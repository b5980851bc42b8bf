"""The Cypher statements with which the Neo4j store reads: memories by id, seq or page,
associations, full-text search, the bulk reads of the view and the vector indexes, and
counts. (:mod:`hippograph.graph.neo4j_statements` holds the data model and the
statements that write.)
"""

from __future__ import annotations

from hippograph.graph.model import AssociationType
from hippograph.graph.neo4j_statements import statement

__all__ = [
    "ASSOCIATIONS",
    "BY_CONTENT_HASH",
    "ENTITIES",
    "GET_BY_ID",
    "GET_BY_SEQ",
    "ITER_CONTENTS",
    "ITER_EDGES_FROM_ENTITIES",
    "ITER_EDGES_FROM_MEMORIES",
    "ITER_EMBEDDINGS",
    "ITER_MEMORIES",
    "ITER_PASSAGES",
    "LAST_IN_SESSION",
    "LOAD_EDGES_FROM_ENTITIES",
    "LOAD_EDGES_FROM_MEMORIES",
    "LOAD_ENTITY_NODES",
    "LOAD_MEMORY_NODES",
    "NODE_IDS",
    "NODE_SEQS",
    "RECALLED",
    "SEARCH_TEXT",
    "STATS_EDGES",
    "STATS_ENTITIES",
    "STATS_MEMORIES",
]


_MEMORY_MAP = (
    "m {.id, .namespace, .content, .kind, .tier, .session_id, "
    "created_at: toString(m.created_at), occurred_at: toString(m.occurred_at), "
    "last_accessed_at: toString(m.last_accessed_at), .access_count, .importance, "
    ".content_hash, .metadata, "
    "embedding: CASE WHEN $embeddings THEN m.embedding END, "
    "passages: CASE WHEN $embeddings THEN m.passages END, "
    "context_embedding: CASE WHEN $embeddings THEN m.context_embedding END} AS memory"
)
GET_BY_ID = statement(
    "get_by_id",
    "UNWIND $ids AS id MATCH (m:Memory {namespace: $namespace, id: id}) RETURN " + _MEMORY_MAP,
    "namespace",
    "ids",
    "embeddings",
)
BY_CONTENT_HASH = statement(
    "by_content_hash",
    "UNWIND $hashes AS hash MATCH (m:Memory {namespace: $namespace, content_hash: hash}) "
    "RETURN m.seq AS seq, " + _MEMORY_MAP,
    "namespace",
    "hashes",
    "embeddings",
)
GET_BY_SEQ = statement(
    "get_by_seq",
    "UNWIND $seqs AS seq MATCH (m:Memory {namespace: $namespace, seq: seq}) "
    "RETURN m.seq AS seq, " + _MEMORY_MAP,
    "namespace",
    "seqs",
    "embeddings",
)
ITER_MEMORIES = statement(
    "iter_memories",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "WITH m ORDER BY m.seq LIMIT $chunk RETURN m.seq AS seq, " + _MEMORY_MAP,
    "namespace",
    "after",
    "chunk",
    "embeddings",
)
NODE_SEQS = statement(
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
NODE_IDS = statement(
    "node_ids",
    "UNWIND $seqs AS seq " + _NODE_OF_SEQ + "RETURN seq, n.id AS id",
    "namespace",
    "seqs",
)
RECALLED = statement(
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
LAST_IN_SESSION = statement(
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
ASSOCIATIONS = statement(
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
SEARCH_TEXT = statement(
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
LOAD_MEMORY_NODES = statement(
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
LOAD_ENTITY_NODES = statement(
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
LOAD_EDGES_FROM_MEMORIES = statement(
    "load_edges_from_memories",
    "MATCH (a:Memory) WHERE a.namespace = $namespace AND a.seq > $after " + _LOAD_EDGES,
    "namespace",
    "after",
    "chunk",
)
LOAD_EDGES_FROM_ENTITIES = statement(
    "load_edges_from_entities",
    "MATCH (a:Entity) WHERE a.namespace = $namespace AND a.seq > $after " + _LOAD_EDGES,
    "namespace",
    "after",
    "chunk",
)
ITER_EMBEDDINGS = statement(
    "iter_embeddings",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "AND m.embedding IS NOT NULL WITH m ORDER BY m.seq LIMIT $chunk "
    "RETURN max(m.seq) AS last, collect(m.seq) AS seqs, collect(m.embedding) AS vectors",
    "namespace",
    "after",
    "chunk",
)
ITER_PASSAGES = statement(
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
ITER_CONTENTS = statement(
    "iter_contents",
    "MATCH (m:Memory) WHERE m.namespace = $namespace AND m.seq > $after "
    "WITH m ORDER BY m.seq LIMIT $chunk "
    "RETURN max(m.seq) AS last, collect(m.seq) AS seqs, collect(m.content) AS contents",
    "namespace",
    "after",
    "chunk",
)
ENTITIES = statement(
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
ITER_EDGES_FROM_MEMORIES = statement(
    "iter_edges_from_memories",
    "MATCH (s:Memory) WHERE s.namespace = $namespace AND s.seq > $after " + _ITER_EDGES,
    "namespace",
    "after",
    "chunk",
)
ITER_EDGES_FROM_ENTITIES = statement(
    "iter_edges_from_entities",
    "MATCH (s:Entity) WHERE s.namespace = $namespace AND s.seq > $after " + _ITER_EDGES,
    "namespace",
    "after",
    "chunk",
)
STATS_MEMORIES = statement(
    "stats_memories",
    "MATCH (m:Memory {namespace: $namespace}) "
    "RETURN m.tier AS tier, m.kind AS kind, count(*) AS count",
    "namespace",
)
STATS_EDGES = statement(
    "stats_edges",
    f"MATCH (a:Memory {{namespace: $namespace}})-[r:{_OURS}]->{_OWN_END}"
    "RETURN type(r) AS type, count(*) AS count "
    "UNION ALL "
    f"MATCH (a:Entity {{namespace: $namespace}})-[r:{_OURS}]->{_OWN_END}"
    "RETURN type(r) AS type, count(*) AS count",
    "namespace",
)
STATS_ENTITIES = statement(
    "stats_entities",
    "MATCH (e:Entity {namespace: $namespace}) RETURN count(e) AS count",
    "namespace",
)
