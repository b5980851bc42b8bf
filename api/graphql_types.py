"""The GraphQL types: enums, output types built from the engine's objects, and the
input types turned into the engine's inputs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from hippograph.graph import Association as EngineAssociation
from hippograph.graph import (
    AssociationType,
    Link,
    MemoryKind,
    Tier,
)
from hippograph.graph import Memory as EngineMemory
from hippograph.graph import MemoryInput as EngineMemoryInput
from hippograph.graph import RecallContext as EngineRecallContext
from hippograph.graph import Recollection as EngineRecollection
from hippograph.graph.scoring import PART_NAMES

__all__ = [
    "AssociationEdge",
    "AssociationInput",
    "LifecycleReport",
    "LifecycleRun",
    "LinkInput",
    "MemoryInput",
    "MemoryType",
    "MemoryUpdateInput",
    "RecallContextInput",
    "Recollection",
    "StatsType",
]

# -- enums and output types -----------------------------------------------------------

strawberry.enum(Tier, description="Where a memory lives in its lifecycle.")
strawberry.enum(MemoryKind, description="What a memory is.")
strawberry.enum(
    AssociationType,
    description="The type of an association (a directed, weighted edge).",
)


@strawberry.type(name="Memory", description="A node of the memory graph.")
class MemoryType:
    id: strawberry.ID
    namespace: str
    content: str
    kind: MemoryKind
    tier: Tier
    session_id: str | None
    created_at: datetime = strawberry.field(description="When it was stored.")
    occurred_at: datetime = strawberry.field(
        description="When it happened (recency counts from it)."
    )
    last_accessed_at: datetime | None
    access_count: int
    importance: float
    metadata: JSON
    invalid_at: datetime | None = strawberry.field(
        default=None,
        description="When a newer memory superseded it (its occurredAt); null while valid.",
    )
    superseded_by: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="The newer memories that supersede it."
    )

    @classmethod
    def from_model(
        cls,
        memory: EngineMemory,
        superseded: tuple[datetime | None, list[str]] | None = None,
    ) -> MemoryType:
        invalid_at, by = superseded or (None, [])
        return cls(
            invalid_at=invalid_at,
            superseded_by=[strawberry.ID(i) for i in by],
            id=strawberry.ID(memory.id),
            namespace=memory.namespace,
            content=memory.content,
            kind=memory.kind,
            tier=memory.tier,
            session_id=memory.session_id,
            created_at=memory.created_at,
            occurred_at=memory.when,
            last_accessed_at=memory.last_accessed_at,
            access_count=memory.access_count,
            importance=memory.importance,
            metadata=JSON(memory.metadata),
        )


@strawberry.type(name="Association", description="A directed, typed, weighted edge.")
class AssociationEdge:
    source: strawberry.ID
    target: strawberry.ID = strawberry.field(
        description="A memory id, or entity:<key> for MENTIONS."
    )
    type: AssociationType
    weight: float
    explicit: bool = strawberry.field(description="Given by a caller (not built on write).")
    created_at: datetime

    @classmethod
    def from_model(cls, edge: EngineAssociation) -> AssociationEdge:
        return cls(
            source=strawberry.ID(edge.source),
            target=strawberry.ID(edge.target),
            type=edge.type,
            weight=edge.weight,
            explicit=edge.explicit,
            created_at=edge.created_at,
        )


@strawberry.type(name="ScoreParts", description="What a recollection's score is made of.")
class ScoreParts:
    similarity: float = strawberry.field(description="Cosine of the query and the memory.")
    activation: float = strawberry.field(description="Seed energy plus what spread in.")
    recency: float = strawberry.field(description="ACT-R base-level activation, 0..1.")
    importance: float
    context: float = strawberry.field(description="Session, entities and time window match.")
    informativeness: float = strawberry.field(
        description="How much the memory says: n / (n + mean) of its non-stopword terms."
    )
    validity: float = strawberry.field(
        description="1 when no newer memory supersedes it at the time asked, else 0."
    )


@strawberry.type(name="PathStep", description="One hop of the path that brought a memory.")
class PathStep:
    from_: strawberry.ID = strawberry.field(
        name="from", description="A memory id, or entity:<key> for a hop through an entity."
    )
    type: AssociationType
    weight: float


@strawberry.type(name="Recollection", description="A recalled memory and why it came back.")
class Recollection:
    memory: MemoryType
    score: float
    parts: ScoreParts
    path: list[PathStep]
    superseded_by: list[strawberry.ID] = strawberry.field(
        description="Newer memories that supersede this one (empty when it is valid)."
    )

    @classmethod
    def from_model(cls, found: EngineRecollection) -> Recollection:
        return cls(
            memory=MemoryType.from_model(found.memory, (found.invalid_at, found.superseded_by)),
            score=found.score,
            parts=ScoreParts(**{name: found.parts[name] for name in PART_NAMES}),
            path=[
                PathStep(from_=strawberry.ID(s.source), type=s.type, weight=s.weight)
                for s in found.path
            ],
            superseded_by=[strawberry.ID(i) for i in found.superseded_by],
        )


@strawberry.type
class TierCount:
    tier: Tier
    count: int


@strawberry.type
class KindCount:
    kind: MemoryKind
    count: int


@strawberry.type
class AssociationCount:
    type: AssociationType
    count: int


@strawberry.type(description="The namespace's vector index.")
class IndexStats:
    kind: str = strawberry.field(description="exact or hnsw.")
    vectors: int = strawberry.field(description="Live vectors.")
    dead: int = strawberry.field(description="Forgotten vectors not yet compacted away.")


@strawberry.type(description="The namespace's in-memory association graph.")
class GraphStats:
    nodes: int = strawberry.field(description="Live nodes: memories and entities.")
    edges: int


@strawberry.type(description="One count a lifecycle job reports.")
class JobCount:
    name: str
    value: int


@strawberry.type(description="One lifecycle job run.")
class LifecycleRun:
    job: str
    run_id: strawberry.ID
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    counts: list[JobCount]
    seconds: float | None = strawberry.field(
        default=None, description="Wall time of the job (set on the run just made)."
    )

    @classmethod
    def from_dict(cls, run: Mapping[str, Any]) -> LifecycleRun:
        return cls(
            job=str(run["job"]),
            run_id=strawberry.ID(str(run.get("run_id", run.get("id")))),
            dry_run=bool(run["dry_run"]),
            started_at=datetime.fromisoformat(run["started_at"]),
            finished_at=datetime.fromisoformat(run["finished_at"]),
            counts=[JobCount(name=k, value=int(v)) for k, v in run["counts"].items()],
            seconds=run.get("seconds"),
        )


@strawberry.type(description="What a lifecycle run changed (or, dry, would change).")
class LifecycleReport:
    namespace: str
    dry_run: bool
    jobs: list[LifecycleRun]


@strawberry.type(name="Stats", description="Counts of one namespace.")
class StatsType:
    namespace: str
    memories: int
    entities: int
    tiers: list[TierCount]
    kinds: list[KindCount]
    associations: list[AssociationCount]
    index: IndexStats
    graph: GraphStats
    lifecycle_runs: list[LifecycleRun] = strawberry.field(
        description="The latest lifecycle job runs, newest first."
    )

    @classmethod
    def from_stats(cls, namespace: str, stats: Mapping[str, Any]) -> StatsType:
        return cls(
            namespace=namespace,
            memories=int(stats["memories"]),
            entities=int(stats["entities"]["count"]),
            tiers=[TierCount(tier=Tier(t), count=int(n)) for t, n in stats["tiers"].items()],
            kinds=[KindCount(kind=MemoryKind(k), count=int(n)) for k, n in stats["kinds"].items()],
            associations=[
                AssociationCount(type=AssociationType(t), count=int(n))
                for t, n in stats["associations"].items()
            ],
            index=IndexStats(
                kind=str(stats["index"]["kind"]),
                vectors=int(stats["index"]["vectors"]),
                dead=int(stats["index"]["dead"]),
            ),
            graph=GraphStats(
                nodes=int(stats["graph"]["nodes"]), edges=int(stats["graph"]["edges"])
            ),
            lifecycle_runs=[LifecycleRun.from_dict(r) for r in stats.get("lifecycle_runs", [])],
        )


# -- inputs ---------------------------------------------------------------------------


@strawberry.input(name="LinkInput", description="An explicit association to a stored memory.")
class LinkInput:
    target: strawberry.ID = strawberry.field(
        description="A stored memory, or one earlier in the same batch."
    )
    type: AssociationType = AssociationType.RELATED_TO
    weight: float = 1.0


@strawberry.input(name="MemoryInput", description="One memory to remember.")
class MemoryInput:
    content: str
    id: strawberry.ID | None = strawberry.field(
        default=None, description="Caller-chosen id, unique in the namespace."
    )
    kind: MemoryKind | None = MemoryKind.EVENT
    session_id: str | None = strawberry.field(
        default=None, description="Memories of a session are linked in order (FOLLOWS)."
    )
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When it happened (ISO-8601; default: now)."
    )
    importance: float | None = strawberry.field(default=0.5, description="0 to 1.")
    metadata: JSON | None = strawberry.field(default=None, description="A JSON object.")
    links: list[LinkInput] | None = None
    supersedes: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Stored memories this one replaces: each gets a SUPERSEDES association "
        "from it and is no longer valid from this one's occurredAt.",
    )
    force_new: bool | None = strawberry.field(
        default=False,
        description="Store it even when the same content is stored already (by default "
        "remember is idempotent: it returns the stored memory and counts a use).",
    )

    def to_engine(self) -> EngineMemoryInput:
        # null means "not given", as in the CLI's JSONL
        return EngineMemoryInput(
            content=self.content,
            id=None if self.id is None else str(self.id),
            kind=self.kind if self.kind is not None else MemoryKind.EVENT,
            session_id=self.session_id,
            occurred_at=self.occurred_at,
            importance=self.importance if self.importance is not None else 0.5,
            metadata=cast(dict[str, Any], self.metadata) if self.metadata is not None else {},
            links=[Link(str(k.target), k.type, k.weight) for k in self.links or []],
            supersedes=[str(i) for i in self.supersedes or []],
            force_new=bool(self.force_new),
        )


@strawberry.input(
    name="MemoryUpdate",
    description="What updateMemory changes; fields not given keep the memory's values.",
)
class MemoryUpdateInput:
    content: str | None = strawberry.field(
        default=None,
        description="New content makes a new version that SUPERSEDES the memory (which "
        "stays stored and reachable); without it the other fields change in place.",
    )
    kind: MemoryKind | None = None
    importance: float | None = strawberry.field(default=None, description="0 to 1.")
    metadata: JSON | None = strawberry.field(default=None, description="A JSON object.")
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When the change happened (new content only; default: now)."
    )


@strawberry.input(name="AssociationInput", description="An explicit association to make.")
class AssociationInput:
    source: strawberry.ID
    target: strawberry.ID
    type: AssociationType = AssociationType.RELATED_TO
    weight: float = 1.0


@strawberry.input(name="RecallContext", description="What the agent is doing now.")
class RecallContextInput:
    session_id: str | None = strawberry.field(
        default=None, description="The current session: its memories score higher."
    )
    text: str | None = strawberry.field(
        default=None, description="Extra text blended into the query's embedding."
    )
    at: datetime | None = strawberry.field(
        default=None, description="The time of the question (default: now)."
    )
    entities: list[str] | None = strawberry.field(
        default=None, description="Entities in play: memories mentioning them score higher."
    )
    since: datetime | None = strawberry.field(default=None, description="Time window: from.")
    until: datetime | None = strawberry.field(default=None, description="Time window: to.")
    hard_window: bool | None = strawberry.field(
        default=False,
        description="Make since/until a filter: nothing outside the window comes back "
        "(by default the window only adds to the context part of the score).",
    )
    as_of: datetime | None = strawberry.field(
        default=None,
        description="Answer as of this time: only what had happened by then, and what was "
        "valid then (a memory superseded later counts as valid).",
    )

    def to_engine(self) -> EngineRecallContext:
        return EngineRecallContext(
            session_id=self.session_id,
            text=self.text,
            at=self.at,
            entities=list(self.entities or []),
            since=self.since,
            until=self.until,
            hard_window=bool(self.hard_window),
            as_of=self.as_of,
        )
