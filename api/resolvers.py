"""The GraphQL resolvers: ``Query`` and ``Mutation``.

Resolvers are thin. Each one checks that the caller's key may use the namespace, checks
the configured size limits (``LIMIT_EXCEEDED``), then calls the same engine function the
CLI calls, in the bounded pool of worker threads (:meth:`Service.run`) so that engine
work never blocks the event loop. The engine checks everything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, cast

import strawberry

from hippograph.api.graphql_types import (
    AssociationEdge,
    AssociationInput,
    LifecycleReport,
    LifecycleRun,
    MemoryInput,
    MemoryType,
    MemoryUpdateInput,
    RecallContextInput,
    Recollection,
    StatsType,
)
from hippograph.api.request import Info, LimitExceeded
from hippograph.api.settings import Settings
from hippograph.graph import Association as EngineAssociation
from hippograph.graph import (
    AssociationType,
    BadInput,
    NotFound,
    Tier,
)
from hippograph.graph import Recollection as EngineRecollection
from hippograph.graph.model import ENTITY_PREFIX
from hippograph.lifecycle.archived_recall import recall_with_archive

__all__ = ["Mutation", "Query"]

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
            for name in ("at", "since", "until", "as_of"):
                _check_instant(f"context.{name}", getattr(context, name))
        recall_context = context.to_engine() if context is not None else None

        search = list(tiers) if tiers else None
        archived = search is not None and Tier.ARCHIVED in search

        def work() -> tuple[list[EngineRecollection], dict[str, float]]:
            stages: dict[str, float] = {}
            recall: Callable[..., list[EngineRecollection]] = service.graph.recall
            if archived:
                # inputs checked before anything moves out of the archive
                recall = partial(recall_with_archive, service.graph)
            found = recall(
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
        graph = ctx.service.graph

        def work() -> MemoryType | None:
            found = graph.get(ns, str(id))
            if found is None:
                return None
            return MemoryType.from_model(found, graph.superseded(ns, found.id))

        return await ctx.service.run(work)

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

    @strawberry.mutation(
        description="Change a memory. New content makes a new version (a new memory, "
        "re-embedded and re-associated) that SUPERSEDES the old one, which stays stored "
        "but is no longer valid; otherwise kind, importance and metadata change in place. "
        "Returns the new state."
    )
    async def update_memory(
        self, info: Info, namespace: str, id: strawberry.ID, input: MemoryUpdateInput
    ) -> MemoryType:
        ctx = info.context
        ns = ctx.use(namespace)
        settings = ctx.service.settings
        _check_instant("input.occurredAt", input.occurred_at)
        if input.content is not None:
            _at_most(
                "input.content",
                len(input.content),
                settings.max_content_chars,
                "MAX_CONTENT_CHARS",
                "characters",
            )
        graph = ctx.service.graph

        def work() -> MemoryType:
            updated = graph.update(
                ns,
                str(id),
                content=input.content,
                metadata=cast(dict[str, Any], input.metadata)
                if input.metadata is not None
                else None,
                importance=input.importance,
                kind=input.kind,
                occurred_at=input.occurred_at,
            )
            return MemoryType.from_model(updated, graph.superseded(ns, updated.id))

        return await ctx.service.run(work)

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
        at: Annotated[
            datetime | None,
            strawberry.argument(
                description="The time the jobs judge age and idleness by (default: now), as "
                "the CLI's --at: for simulations and replays."
            ),
        ] = None,
    ) -> LifecycleReport:
        from hippograph.lifecycle.runner import parse_jobs, run_jobs

        ctx = info.context
        ns = ctx.use(namespace)
        service = ctx.service
        names = parse_jobs(jobs or None)
        _check_instant("at", at)
        now = None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
        config = service.settings.lifecycle_config()
        report = await service.run(
            lambda: run_jobs(service.graph, ns, names, config=config, now=now, dry_run=dry_run)
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
