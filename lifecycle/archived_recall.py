"""Recall that reaches into the archive: the one entry point the CLI
(``recall --include-archived``) and GraphQL (``recall(tiers: [..., ARCHIVED])``) call.

The order is the guarantee: every input is checked *before* the archive search, because
the search rehydrates what it finds (a write: memories move out of the archive into the
working tier). A recall refused for its ``k`` or ``hops`` after memories had moved was
a bug (found by tests/reliability/test_fuzz.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hippograph.graph.inputs import check_namespace, check_query, check_recall
from hippograph.graph.memory import MemoryGraph
from hippograph.graph.model import Tier
from hippograph.graph.recall import Recollection
from hippograph.lifecycle.archive import recall_archived

__all__ = ["recall_with_archive"]


def recall_with_archive(
    graph: MemoryGraph,
    namespace: str,
    query: str,
    *,
    k: int = 10,
    tiers: Sequence[Tier] | None = None,
    hops: int | None = None,
    **options: Any,
) -> list[Recollection]:
    """``graph.recall`` after bringing back the archived memories nearest to ``query``.

    Steps: check the namespace, the query, ``k``, ``tiers`` and ``hops`` as recall would
    (``BadInput``, nothing moved); search the archive files and rehydrate the ``k``
    best stubs into the working tier (:func:`~hippograph.lifecycle.archive.recall_archived`);
    then recall. ``tiers`` None searches the default tiers (all but archived), which
    include the working tier; given tiers get the working tier added, where rehydrated
    memories land. ``options`` (``context``, ``learn``, ``timings``) and the other
    arguments are :meth:`MemoryGraph.recall`'s.
    """
    check_namespace(namespace)
    check_query(graph.config, query)
    check_recall(graph.config, k, tiers, hops)
    # the hot tiers named, so the recall after this one does not consult the archive again
    search = list(tiers) if tiers else [t for t in Tier if t != Tier.ARCHIVED]
    if Tier.WORKING not in search:
        search.append(Tier.WORKING)
    recall_archived(graph, namespace, query, k)
    return graph.recall(namespace, query, k=k, tiers=search, hops=hops, **options)
