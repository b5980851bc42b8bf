// name: Working set
// The 50 most recently used :Working memories in $namespace and the associations among them.
MATCH (m:Memory:Working {namespace: $namespace})
WITH m
ORDER BY coalesce(m.last_accessed_at, m.created_at) DESC
LIMIT 50
WITH collect(m) AS working
UNWIND working AS a
OPTIONAL MATCH (a)-[r]->(b:Memory)
WHERE b IN working
RETURN a, r, b;

// name: Memory neighbourhood
// Everything associated with memory $id within two hops, in either direction.
MATCH p = (m:Memory {namespace: $namespace, id: $id})-[:SIMILAR_TO|FOLLOWS|MENTIONS|PART_OF|DERIVED_FROM|CAUSES|CONTRADICTS|RELATED_TO|SUPERSEDES*1..2]-(n)
RETURN p
LIMIT 300;

// name: Strongest associations
// The 50 heaviest memory-to-memory associations in $namespace (PART_OF and MENTIONS left out).
MATCH (a:Memory {namespace: $namespace})-[r:SIMILAR_TO|FOLLOWS|DERIVED_FROM|CAUSES|CONTRADICTS|RELATED_TO]->(b:Memory)
WHERE r.weight IS NOT NULL
RETURN a, r, b
ORDER BY r.weight DESC
LIMIT 50;

// name: Concepts and members
// The 25 largest concepts in $namespace with the memories that are PART_OF them.
MATCH (c:Memory:Semantic {namespace: $namespace, kind: 'concept'})
OPTIONAL MATCH (:Memory)-[r:PART_OF]->(c)
WITH c, collect(r) AS parts
ORDER BY size(parts) DESC
LIMIT 25
RETURN c, parts, [part IN parts | startNode(part)] AS members;

// name: Last archive run
// The latest non-dry-run archive LifecycleRun in $namespace and the memories it archived.
MATCH (run:LifecycleRun {namespace: $namespace, job: 'archive'})
WHERE coalesce(run.dry_run, false) = false
WITH run
ORDER BY run.started_at DESC
LIMIT 1
OPTIONAL MATCH (m:Memory:Archived {namespace: $namespace})
WHERE m.archived_at >= run.started_at AND m.archived_at <= run.finished_at
RETURN run, m;

// name: Session timeline
// The session that memory $id belongs to, as its chain of FOLLOWS edges.
MATCH (anchor:Memory {namespace: $namespace, id: $id})
MATCH (m:Memory {namespace: $namespace, session_id: anchor.session_id})
OPTIONAL MATCH (m)-[f:FOLLOWS]->(n:Memory {namespace: $namespace, session_id: anchor.session_id})
RETURN m, f, n
LIMIT 500;

// name: Most mentioned entities
// The 25 entities in $namespace mentioned by the most memories.
MATCH (e:Entity {namespace: $namespace})<-[:MENTIONS]-(m:Memory)
RETURN e.content AS entity, e.id AS id, count(DISTINCT m) AS mentions
ORDER BY mentions DESC, entity
LIMIT 25;

// name: Never recalled
// Live (not :Archived) memories in $namespace that have never been accessed, oldest first.
MATCH (m:Memory {namespace: $namespace})
WHERE coalesce(m.access_count, 0) = 0 AND NOT m:Archived
RETURN m.id AS id, m.tier AS tier, m.kind AS kind, m.importance AS importance, m.created_at AS created_at, m.caption AS caption
ORDER BY m.created_at
LIMIT 100;

// name: Tier counts
// How many memories $namespace holds in each tier, with concept counts and mean importance.
MATCH (m:Memory {namespace: $namespace})
RETURN m.tier AS tier, count(*) AS memories, count(CASE WHEN m.kind = 'concept' THEN 1 END) AS concepts, round(avg(m.importance), 3) AS mean_importance
ORDER BY memories DESC;

// name: Versions of a memory
// The chain of versions around memory $id: what it supersedes and what supersedes it.
MATCH p = (:Memory {namespace: $namespace, id: $id})-[:SUPERSEDES*0..10]-(:Memory)
RETURN p
LIMIT 100;
