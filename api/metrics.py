"""What the service measures and how ``/metrics`` shows it (Prometheus text format).

This module owns the service's metrics, kept in a per-app ``CollectorRegistry`` (never
the process-wide default, so a process can build several apps, as the tests do):

* ``hippograph_request_duration_seconds{operation, outcome}`` — GraphQL requests, by the
  root fields they ask for (``recall``, ``remember``, ``recall+stats``...);
* ``hippograph_recall_stage_duration_seconds{stage}`` — where recall time goes, as the
  engine reports it (``MemoryGraph.recall(timings=...)``): ``embed``, ``seed``,
  ``activate``, ``score``, ``fetch``, ``learn``;
* ``hippograph_errors_total{code}`` — errors returned to clients, by ``extensions.code``;
* ``hippograph_memories{namespace, tier}``, ``hippograph_memories_by_kind{namespace,
  kind}``, ``hippograph_associations{namespace, type}``, ``hippograph_entities{namespace}``
  and ``hippograph_index_vectors{namespace}`` — counts from ``MemoryGraph.stats``,
  refreshed on each scrape (:meth:`ServiceMetrics.set_namespace_stats`);
* ``hippograph_ready`` — 1 once recall can be served.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

# From half a millisecond (a stats call) to ten seconds (a large batch with the model).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _NamespaceCounts(Collector):
    """Gauges built at scrape time from the last ``stats`` snapshot, so a namespace that
    disappears leaves no stale series behind."""

    def __init__(self) -> None:
        self._snapshot: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def update(self, snapshot: Mapping[str, Mapping[str, Any]]) -> None:
        with self._lock:
            self._snapshot = dict(snapshot)

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = dict(self._snapshot)
        memories = GaugeMetricFamily(
            "hippograph_memories", "Memories per namespace and tier.", labels=["namespace", "tier"]
        )
        kinds = GaugeMetricFamily(
            "hippograph_memories_by_kind",
            "Memories per namespace and kind.",
            labels=["namespace", "kind"],
        )
        associations = GaugeMetricFamily(
            "hippograph_associations",
            "Associations per namespace and type.",
            labels=["namespace", "type"],
        )
        entities = GaugeMetricFamily(
            "hippograph_entities", "Entity nodes per namespace.", labels=["namespace"]
        )
        vectors = GaugeMetricFamily(
            "hippograph_index_vectors",
            "Live vectors in the namespace's index.",
            labels=["namespace"],
        )
        for namespace, stats in sorted(snapshot.items()):
            for tier, count in stats.get("tiers", {}).items():
                memories.add_metric([namespace, tier], count)
            for kind, count in stats.get("kinds", {}).items():
                kinds.add_metric([namespace, kind], count)
            for type_, count in stats.get("associations", {}).items():
                associations.add_metric([namespace, type_], count)
            entities.add_metric([namespace], stats.get("entities", {}).get("count", 0))
            vectors.add_metric([namespace], stats.get("index", {}).get("vectors", 0))
        yield from (memories, kinds, associations, entities, vectors)


class ServiceMetrics:
    """The metrics of one app, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "hippograph_request_duration_seconds",
            "GraphQL request latency by operation (the root fields asked for) and outcome.",
            ["operation", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recall_stages = Histogram(
            "hippograph_recall_stage_duration_seconds",
            "Recall latency by stage: embed, seed, activate, score, fetch, learn.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "hippograph_errors",
            "Errors returned to clients, by extensions.code.",
            ["code"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "hippograph_ready", "1 when recall can be served, else 0.", registry=self.registry
        )
        self._counts = _NamespaceCounts()
        self.registry.register(self._counts)

    def observe_request(self, operation: str, outcome: str, seconds: float) -> None:
        self.requests.labels(operation=operation, outcome=outcome).observe(seconds)

    def observe_recall(self, stages: Mapping[str, float]) -> None:
        for stage, seconds in stages.items():
            self.recall_stages.labels(stage=stage).observe(seconds)

    def count_errors(self, codes: Iterable[str]) -> None:
        for code in codes:
            self.errors.labels(code=code).inc()

    def set_namespace_stats(self, snapshot: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the per-namespace counts with ``{namespace: MemoryGraph.stats(...)}``."""
        self._counts.update(snapshot)

    def render(self) -> bytes:
        return generate_latest(self.registry)
