"""The GraphQL schema agents talk to: its types, inputs and resolvers, the rules that
reject a document before it runs, and the shape of every error a client sees.

Resolvers are thin. Each one checks that the caller's key may use the namespace, checks
the configured size limits, then calls the same :class:`~graph.MemoryGraph` method the
CLI calls, in a bounded pool of worker threads so that engine work never blocks the
event loop. Errors leave resolvers as exceptions carrying a ``code``
(:class:`~graph.BadInput`, :class:`~graph.NotFound`, :class:`LimitExceeded`,
:class:`~api.auth.Forbidden`...); :func:`error_payload` turns any GraphQL error into the
JSON the client sees, with ``extensions.code`` and ``extensions.requestId`` and never a
stack trace.

Before a document runs it must pass, besides GraphQL's own validation: a token limit
(strawberry's ``MaxTokensLimiter``, while parsing), a depth limit (``QueryDepthLimiter``),
an alias limit (``MaxAliasesLimiter``) and a cost limit (:func:`document_cost`). Each
rejection is a ``LIMIT_EXCEEDED`` error naming the setting that bounds it. Parsed and
validated documents are cached (bounded LRUs): agents resend the same few documents
with new variables, and validation was most of a request's GraphQL time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, TypeVar, cast

import anyio
import anyio.to_thread
import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.error import GraphQLSyntaxError
from hippograph.api.auth import Principal
from hippograph.api.metrics import ServiceMetrics
from hippograph.api.settings import Settings
from hippograph.embeddings import TextEncoder
from hippograph.graph import Association as EngineAssociation
from hippograph.graph import (
    AssociationType,
    BadInput,
    HippographError,
    Link,
    MemoryGraph,
    MemoryKind,
    NotFound,
    Tier,
)
from hippograph.graph import Memory as EngineMemory
from hippograph.graph import MemoryInput as EngineMemoryInput
from hippograph.graph import RecallContext as EngineRecallContext
from hippograph.graph import Recollection as EngineRecollection
from hippograph.graph.model import ENTITY_PREFIX
from hippograph.graph.scoring import PART_NAMES
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.scalars import JSON

__all__ = [
    "ERROR_CODES",
    "LimitExceeded",
    "RequestContext",
    "RequestRecord",
    "Service",
    "build_schema",
    "document_cost",
    "error_payload",
]

log = logging.getLogger("hippograph.api")

T = TypeVar("T")

#: Every ``extensions.code`` a client can see. ``MODEL_MISMATCH`` comes from the engine
#: when a namespace was embedded by another model than the server's.
ERROR_CODES = (
    "BAD_INPUT",
    "NOT_FOUND",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "LIMIT_EXCEEDED",
    "MODEL_MISMATCH",
    "ARCHIVE_CORRUPT",
    "STORE_UNAVAILABLE",
    "INTERNAL",
)
#: Codes of errors that say nothing about the request: the same request may succeed
#: later (``extensions.retryable``).
RETRYABLE_CODES = frozenset({"STORE_UNAVAILABLE"})

DOCUMENT_CACHE = 256  # parsed and validated documents kept (an LRU of each)
# graphql-core's parse error when a document is over MaxTokensLimiter's limit
_TOO_MANY_TOKENS = re.compile(r"Document contains more than (\d+) tokens")
# Cost model of a document (see document_cost): every field costs 1, these root fields
# cost more (each embeds text or scans a namespace), and the selections under a list
# field are multiplied by the size of the list its argument asks for.
ROOT_COST = {"recall": 10, "remember": 10, "rememberMany": 10, "stats": 5}
LIST_SIZE_ARGUMENT = {
    "recall": ("k", 10),
    "associations": ("limit", 100),
    "rememberMany": ("inputs", 1),
}


class LimitExceeded(HippographError):
    """A request is larger than a configured limit allows. Nothing was changed."""

    code = "LIMIT_EXCEEDED"

    def __init__(self, field: str, message: str, *, limit: int, setting: str) -> None:
        super().__init__(f"{field}: {message}; the limit is {limit} (HIPPOGRAPH_{setting})")
        self.field = field
        self.limit = limit


# -- what a request carries -----------------------------------------------------------


@dataclass(slots=True)
class RequestRecord:
    """What one HTTP request did, filled in as it runs and logged when it ends."""

    request_id: str
    operation: str = "-"
    principal: str = "-"
    namespaces: set[str] = field(default_factory=set)
    codes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Service:
    """What every request shares: the graph, the settings, the metrics, and the bounded
    pool of threads that runs engine calls."""

    graph: MemoryGraph
    settings: Settings
    metrics: ServiceMetrics
    encoder: TextEncoder
    limiter: anyio.CapacityLimiter

    async def run(self, work: Callable[[], T]) -> T:
        """Run blocking engine work in the worker pool; the event loop stays free.

        The work runs to its end, and the caller waits for it, even when the caller is
        cancelled: graphql-core cancels the sibling fields of a field that failed (a
        native ``Task.cancel``, which anyio's shielding does not stop). Without this the
        answer went out while a sibling ``recall`` still ran (and learned) in a worker
        thread, its limiter token already returned, so neither ``WORKER_THREADS`` nor
        the shutdown drain counted it (found by tests/reliability/test_fuzz.py).
        """
        task = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=self.limiter))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            while not task.done():
                try:
                    await asyncio.wait([task])
                except asyncio.CancelledError:
                    continue  # cancelled again: the thread still cannot be stopped
            if not task.cancelled():
                task.exception()  # retrieved (else asyncio logs it): the answer has its error
            raise


@dataclass(slots=True)
class RequestContext:
    """The GraphQL context of one request: the service, who is asking, and its record."""

    service: Service
    principal: Principal
    record: RequestRecord

    def use(self, namespace: str) -> str:
        """The namespace, once this request's key is allowed to use it (else FORBIDDEN,
        before anything is looked up, so nothing about the namespace leaks)."""
        self.record.namespaces.add(namespace[:128])
        self.principal.require(namespace)
        return namespace


Info = strawberry.Info[RequestContext, None]


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

    @classmethod
    def from_model(cls, memory: EngineMemory) -> MemoryType:
        return cls(
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

    @classmethod
    def from_model(cls, found: EngineRecollection) -> Recollection:
        return cls(
            memory=MemoryType.from_model(found.memory),
            score=found.score,
            parts=ScoreParts(**{name: found.parts[name] for name in PART_NAMES}),
            path=[
                PathStep(from_=strawberry.ID(s.source), type=s.type, weight=s.weight)
                for s in found.path
            ],
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

    def to_engine(self) -> EngineRecallContext:
        return EngineRecallContext(
            session_id=self.session_id,
            text=self.text,
            at=self.at,
            entities=list(self.entities or []),
            since=self.since,
            until=self.until,
        )


# -- limits checked by the resolvers --------------------------------------------------


def _at_most(field: str, value: int, limit: int, setting: str, unit: str) -> None:
    if value > limit:
        raise LimitExceeded(field, f"is {value} {unit}", limit=limit, setting=setting)


def _check_instant(field: str, value: datetime | None) -> None:
    """A time the engine can store: one whose UTC instant is within years 1 to 9999.
    ``9999-12-31T23:59:59-05:00`` is in year 10000 in UTC, and the engine's conversion
    raised ``OverflowError`` (an INTERNAL error; found by tests/reliability/test_fuzz.py)."""
    if value is None or value.tzinfo is None:
        return  # a naive time is taken as UTC: in range
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise BadInput(field, f"{value.isoformat()} is out of range in UTC") from None


def _check_memory(item: MemoryInput, where: str, settings: Settings) -> None:
    """Size limits of one input (LIMIT_EXCEEDED) and times out of range (BAD_INPUT); the
    engine checks everything else."""
    _check_instant(f"{where}.occurredAt", item.occurred_at)
    if isinstance(item.content, str):
        _at_most(
            f"{where}.content",
            len(item.content),
            settings.max_content_chars,
            "MAX_CONTENT_CHARS",
            "characters",
        )
    _at_most(f"{where}.links", len(item.links or []), settings.max_links, "MAX_LINKS", "links")
    if item.metadata is not None:
        try:
            size = len(json.dumps(item.metadata, allow_nan=False).encode("utf-8"))
        except (TypeError, ValueError):
            return  # not JSON: the engine says so (BAD_INPUT)
        _at_most(
            f"{where}.metadata", size, settings.max_metadata_bytes, "MAX_METADATA_BYTES", "bytes"
        )


# -- resolvers ------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="The k memories most worth recalling for a query.")
    async def recall(
        self,
        info: Info,
        namespace: str,
        query: str,
        k: int | None = 10,
        context: RecallContextInput | None = None,
        tiers: Annotated[
            list[Tier] | None,
            strawberry.argument(
                description="Tiers to search (default: all but ARCHIVED). With ARCHIVED, the "
                "archive files are searched too and what matches is rehydrated into the "
                "working tier, then recalled with the rest."
            ),
        ] = None,
        hops: Annotated[
            int | None,
            strawberry.argument(description="Spreading-activation hops (default: the setting)."),
        ] = None,
        learn: Annotated[
            bool,
            strawberry.argument(
                description="Record the access and strengthen associations among the results."
            ),
        ] = True,
    ) -> list[Recollection]:
        ctx = info.context
        ns = ctx.use(namespace)
        service = ctx.service
        settings = service.settings
        k = 10 if k is None else k  # null means "not given"
        _at_most("query", len(query), settings.max_content_chars, "MAX_CONTENT_CHARS", "characters")
        _at_most("k", k, settings.max_k, "MAX_K", "memories")
        if hops is not None:
            _at_most("hops", hops, settings.max_hops, "MAX_HOPS", "hops")
        # The engine checks these too, but only once recall runs: after the archive search
        # below, which rehydrates (writes). A recall of tiers [ARCHIVED] with hops: -1 was
        # refused after it had moved memories out of the archive (found by
        # tests/reliability/test_fuzz.py). Same messages as the engine's.
        if k < 1:
            raise BadInput("k", f"must be an integer from 1 to {settings.max_k}")
        if hops is not None and hops < 0:
            raise BadInput("hops", f"must be an integer from 0 to {settings.max_hops}")
        if context is not None:
            # the context text is embedded with the query: the same bound (it had none)
            if context.text is not None:
                _at_most(
                    "context.text",
                    len(context.text),
                    settings.max_content_chars,
                    "MAX_CONTENT_CHARS",
                    "characters",
                )
            for name in ("at", "since", "until"):
                _check_instant(f"context.{name}", getattr(context, name))
        recall_context = context.to_engine() if context is not None else None

        search = list(tiers) if tiers else None
        if search is not None and Tier.ARCHIVED in search and Tier.WORKING not in search:
            search.append(Tier.WORKING)  # where rehydrated memories land

        def work() -> tuple[list[EngineRecollection], dict[str, float]]:
            stages: dict[str, float] = {}
            if search is not None and Tier.ARCHIVED in search:
                from hippograph.lifecycle.archive import recall_archived

                recall_archived(service.graph, ns, query, k)
            found = service.graph.recall(
                ns,
                query,
                k=k,
                context=recall_context,
                tiers=search,
                hops=hops,
                learn=learn,
                timings=stages,
            )
            return found, stages

        found, stages = await service.run(work)
        service.metrics.observe_recall(stages)
        return [Recollection.from_model(r) for r in found]

    @strawberry.field(description="One memory by id, or null.")
    async def memory(self, info: Info, namespace: str, id: strawberry.ID) -> MemoryType | None:
        ctx = info.context
        ns = ctx.use(namespace)
        found = await ctx.service.run(lambda: ctx.service.graph.get(ns, str(id)))
        return MemoryType.from_model(found) if found is not None else None

    @strawberry.field(
        description="Associations from and to a memory (or an entity:<key>). Drawn as a "
        "picture by `GET /graph?namespace=NS&focus=ID&depth=2` (HTML, no CDN)."
    )
    async def associations(
        self,
        info: Info,
        namespace: str,
        id: strawberry.ID,
        types: list[AssociationType] | None = None,
        limit: int = 100,
    ) -> list[AssociationEdge]:
        ctx = info.context
        ns = ctx.use(namespace)
        graph = ctx.service.graph
        node = str(id)

        def work() -> list[EngineAssociation]:
            edges = graph.neighbors(ns, node, types or None, limit)
            if not edges and not node.startswith(ENTITY_PREFIX) and graph.get(ns, node) is None:
                raise NotFound(f"id: no memory {node!r} in namespace {ns!r}")
            return edges

        edges = await ctx.service.run(work)
        return [AssociationEdge.from_model(e) for e in edges]

    @strawberry.field(description="Counts of a namespace.")
    async def stats(self, info: Info, namespace: str) -> StatsType:
        ctx = info.context
        ns = ctx.use(namespace)
        graph = ctx.service.graph

        def work() -> dict[str, Any]:
            return {**graph.stats(ns), "lifecycle_runs": graph.lifecycle_runs(ns)}

        return StatsType.from_stats(ns, await ctx.service.run(work))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Store one memory and build its associations.")
    async def remember(self, info: Info, namespace: str, input: MemoryInput) -> MemoryType:
        ctx = info.context
        ns = ctx.use(namespace)
        _check_memory(input, "input", ctx.service.settings)
        item = input.to_engine()
        stored = await ctx.service.run(lambda: ctx.service.graph.remember(ns, item))
        return MemoryType.from_model(stored)

    @strawberry.mutation(description="Store memories atomically: all of them or none.")
    async def remember_many(
        self, info: Info, namespace: str, inputs: list[MemoryInput]
    ) -> list[MemoryType]:
        ctx = info.context
        ns = ctx.use(namespace)
        settings = ctx.service.settings
        _at_most("inputs", len(inputs), settings.max_batch, "MAX_BATCH", "memories")
        for i, item in enumerate(inputs):
            _check_memory(item, f"inputs[{i}]", settings)
        items = [item.to_engine() for item in inputs]
        stored = await ctx.service.run(lambda: ctx.service.graph.remember_many(ns, items))
        return [MemoryType.from_model(m) for m in stored]

    @strawberry.mutation(description="Create or update an explicit association.")
    async def associate(
        self, info: Info, namespace: str, input: AssociationInput
    ) -> AssociationEdge:
        ctx = info.context
        ns = ctx.use(namespace)
        edge = await ctx.service.run(
            lambda: ctx.service.graph.associate(
                ns, str(input.source), str(input.target), input.type, input.weight
            )
        )
        return AssociationEdge.from_model(edge)

    @strawberry.mutation(
        description="Run lifecycle jobs once on a namespace (default: all, in order: decay, "
        "tiering, dedup, consolidate, archive); dryRun reports what would change."
    )
    async def run_lifecycle(
        self,
        info: Info,
        namespace: str,
        jobs: list[str] | None = None,
        dry_run: bool = False,
    ) -> LifecycleReport:
        from hippograph.lifecycle.runner import parse_jobs, run_jobs

        ctx = info.context
        ns = ctx.use(namespace)
        service = ctx.service
        names = parse_jobs(jobs or None)
        config = service.settings.lifecycle_config()
        report = await service.run(
            lambda: run_jobs(service.graph, ns, names, config=config, dry_run=dry_run)
        )
        return LifecycleReport(
            namespace=ns,
            dry_run=report.dry_run,
            jobs=[LifecycleRun.from_dict(j.as_dict()) for j in report.jobs],
        )

    @strawberry.mutation(description="Delete a memory and its associations; false if absent.")
    async def forget(self, info: Info, namespace: str, id: strawberry.ID) -> bool:
        ctx = info.context
        ns = ctx.use(namespace)
        return await ctx.service.run(lambda: ctx.service.graph.forget(ns, str(id)))


# -- document limits ------------------------------------------------------------------


class _CodedContext:
    """A ``ValidationContext`` seen through a limit rule: each error it reports becomes a
    LIMIT_EXCEEDED error naming the setting."""

    def __init__(self, context: ValidationContext, label: str, setting: str, limit: int) -> None:
        self._context = context
        self._label = label
        self._setting = setting
        self._limit = limit

    def report_error(self, error: GraphQLError) -> None:
        self._context.report_error(
            GraphQLError(
                f"{self._label}: {error.message} (HIPPOGRAPH_{self._setting}={self._limit})",
                error.nodes,
                extensions={"code": LimitExceeded.code, "field": "query", "limit": self._limit},
            )
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _coded(
    extension: AddValidationRules, label: str, setting: str, limit: int, max_cost: int
) -> Callable[[], AddValidationRules]:
    """A factory of the extension with its rules reporting LIMIT_EXCEEDED errors that
    name ``setting``. The rules skip a document over the cost limit: they walk every
    fragment expansion (exponential for fragments spreading fragments twice over), and
    the cost rule rejects that document anyway."""
    rules: list[type[ASTValidationRule]] = []
    for rule in extension.validation_rules:

        class Coded(rule):  # type: ignore[valid-type,misc]
            def __init__(self, context: ValidationContext) -> None:
                if sum(cost for _, cost in _operation_costs(context.document)) > max_cost:
                    ValidationRule.__init__(self, context)
                    return
                proxy = _CodedContext(context, label, setting, limit)
                super().__init__(cast(ValidationContext, proxy))

        Coded.__name__ = f"Coded{rule.__name__}"
        rules.append(Coded)
    return partial(AddValidationRules, rules)


def _list_size(node: FieldNode) -> int:
    """How many items a list field asks for: its size argument when a literal, else the
    argument's default (a variable is bounded at run time by MAX_K / MAX_BATCH)."""
    argument, default = LIST_SIZE_ARGUMENT.get(node.name.value, ("", 1))
    for arg in node.arguments or ():
        if arg.name.value != argument:
            continue
        if isinstance(arg.value, IntValueNode):
            return max(int(arg.value.value), 1)
        if isinstance(arg.value, ListValueNode):
            return max(len(arg.value.values), 1)
    return default


def document_cost(
    definition: ExecutableDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    """The cost of one operation: 1 per field (more for the root fields in
    :data:`ROOT_COST`), the selections under a list field multiplied by the size of the
    list it asks for (``recall(k:)``, ``associations(limit:)``, ``rememberMany(inputs:)``),
    fragments expanded where they are spread.

    Fragment costs are memoised, so the count takes time linear in the document even when
    fragments spread each other many times over (strawberry's depth and alias limits walk
    every expansion, so they run only on documents within the cost limit).
    """
    memo: dict[tuple[str, bool], int] = {}

    def selections(selection_set: SelectionSetNode | None, root: bool, seen: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                name = node.name.value
                total += ROOT_COST.get(name, 1) if root else 1
                total += _list_size(node) * selections(node.selection_set, False, seen)
            elif isinstance(node, InlineFragmentNode):
                total += selections(node.selection_set, root, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown or cyclic: GraphQL validation reports it
                key = (name, root)
                if key not in memo:
                    memo[key] = selections(fragment.selection_set, root, seen | {name})
                total += memo[key]
        return total

    return selections(definition.selection_set, True, frozenset())


def _operation_costs(document: DocumentNode) -> Iterator[tuple[str, int]]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else "anonymous"
            yield name, document_cost(definition, fragments)


def _cost_rule(max_cost: int) -> type[ValidationRule]:
    class QueryCostRule(ValidationRule):
        """Rejects a document whose operations cost more than ``max_cost`` together
        (every operation is validated, whichever one is then run)."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            costs = dict(_operation_costs(context.document))
            total = sum(costs.values())
            if total > max_cost:
                names = ", ".join(f"{name!r} {cost}" for name, cost in costs.items())
                context.report_error(
                    GraphQLError(
                        f"query cost: the document costs {total} ({names}); the limit is "
                        f"{max_cost} (HIPPOGRAPH_MAX_QUERY_COST: each field costs 1, recall "
                        "and remember 10, fields under recall/associations/rememberMany "
                        "count k/limit/inputs times)",
                        extensions={
                            "code": LimitExceeded.code,
                            "field": "query",
                            "limit": max_cost,
                        },
                    )
                )

    return QueryCostRule


def operation_label(fields: Sequence[str]) -> str:
    """The ``operation`` of logs and metrics: the root fields a request asked for, sorted
    and joined by ``+`` (``recall``, ``recall+stats``), ``introspection`` for ``__schema``
    and ``__type``, ``multiple`` for more than three. Only known fields get here (the
    document was valid), so the label's values are bounded by the schema."""
    names = sorted({"introspection" if f in ("__schema", "__type") else f for f in fields})
    if not names:
        return "none"
    return "+".join(names) if len(names) <= 3 else "multiple"


def _root_fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[str]:
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            yield node.name.value
        elif isinstance(node, InlineFragmentNode):
            yield from _root_fields(node.selection_set, fragments)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            yield from _root_fields(fragments[node.name.value].selection_set, fragments)


class _RecordOperation(SchemaExtension):
    """Names the request's operation (for logs and metrics) once the document is valid."""

    def on_validate(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        if not isinstance(context, RequestContext) or execution.pre_execution_errors:
            return
        document = execution.graphql_document
        if document is None:
            return
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [
            d
            for d in operations
            if execution.operation_name is None
            or (d.name is not None and d.name.value == execution.operation_name)
        ]
        if len(chosen) == 1:
            context.record.operation = operation_label(
                list(_root_fields(chosen[0].selection_set, fragments))
            )


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # The endpoint logs what must be logged (INTERNAL errors, with the request id);
        # strawberry's default would log every bad input with a traceback.
        return None


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the document limits of ``settings``."""
    return _Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            # Parsed and validated documents are cached (agents resend the same documents
            # with new variables); the caches are bounded LRUs keyed by the query text.
            partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
            partial(ParserCache, maxsize=DOCUMENT_CACHE),
            partial(ValidationCache, maxsize=DOCUMENT_CACHE),
            _coded(
                QueryDepthLimiter(max_depth=settings.max_query_depth),
                "query depth",
                "MAX_QUERY_DEPTH",
                settings.max_query_depth,
                settings.max_query_cost,
            ),
            _coded(
                MaxAliasesLimiter(max_alias_count=settings.max_query_aliases),
                "query aliases",
                "MAX_QUERY_ALIASES",
                settings.max_query_aliases,
                settings.max_query_cost,
            ),
            partial(AddValidationRules, [_cost_rule(settings.max_query_cost)]),
            _RecordOperation,
        ],
    )


# -- errors as the client sees them ---------------------------------------------------


def _classify(error: GraphQLError) -> tuple[str, str, dict[str, Any]]:
    """(code, message, extra extensions) of an error; INTERNAL hides the message."""
    original = error.original_error
    if isinstance(original, HippographError):
        extra = {
            key: value
            for key in ("field", "limit")
            if (value := getattr(original, key, None)) is not None
        }
        if original.code in RETRYABLE_CODES:
            extra["retryable"] = True
        return original.code, str(original), extra
    extensions = error.extensions or {}
    if isinstance(extensions.get("code"), str):
        extra = {k: v for k, v in extensions.items() if k in ("field", "limit")}
        return str(extensions["code"]), error.message, extra
    tokens = _TOO_MANY_TOKENS.search(error.message)
    if isinstance(error, GraphQLSyntaxError) and tokens:
        limit = int(tokens.group(1))
        message = f"query: the document has more than {limit} tokens; the limit is {limit}"
        return (
            "LIMIT_EXCEEDED",
            f"{message} (HIPPOGRAPH_MAX_QUERY_TOKENS)",
            {
                "field": "query",
                "limit": limit,
            },
        )
    if original is None or isinstance(original, GraphQLError):
        # GraphQL's own checks: syntax, unknown fields, wrong argument or variable types
        return "BAD_INPUT", error.message, {}
    if error.path is None and error.message.startswith("Variable '$"):
        # a variable that its scalar could not parse (a malformed DateTime...)
        return "BAD_INPUT", error.message, {}
    return "INTERNAL", "", {}


def error_payload(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """The JSON of one error: ``message``, ``locations``, ``path`` and ``extensions``
    with ``code``, ``requestId`` and, when known, the ``field`` and the ``limit``. An
    INTERNAL error is logged here with its traceback; the client gets the request id."""
    code, message, extra = _classify(error)
    if code == "INTERNAL":
        log.error(
            "internal error in request %s at %s",
            request_id,
            ".".join(str(p) for p in error.path or ()) or "-",
            exc_info=error.original_error,
            extra={"fields": {"request_id": request_id}},
        )
        message = f"internal error; quote request id {request_id} to the operator"
    payload: dict[str, Any] = {"message": message}
    if error.locations:
        payload["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        payload["path"] = list(error.path)
    payload["extensions"] = {"code": code, "requestId": request_id, **extra}
    return payload
