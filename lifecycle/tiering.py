"""Tiering: memories move between the ``working``, ``episodic`` and ``archived`` tiers
by use.

Archiving is about cost, never about forgetting: idle time counts from when hippograph
stored or last used a memory, never from when the remembered event happened, so
importing an old history archives nothing on its first run. For a memory at time
``now`` let its *last use* be ``last_accessed_at``, else ``created_at`` (the ACT-R "most
recent presentation": storing counts as the first), and its idle time ``now - last
use``. One run applies, per memory:

- **promote** ``episodic -> working`` when it was accessed (``last_accessed_at``, not
  creation) within ``promote_recent_days`` of ``now``;
- **demote** ``working -> episodic`` when idle for more than ``working_idle_days``;
- **archive** ``episodic -> archived`` (including one just demoted, so that one run
  reaches the state a second run would: run twice = run once) when it is cold, all of

  - ACT-R base-level activation below ``archive_activation``:
    :math:`B = \\ln\\big(t_1^{-d} + \\frac{(n-1)(L^{1-d} - t_1^{1-d})}{(1-d)(L-t_1)}\\big)`
    (:func:`hippograph.graph.scoring.base_level_activation`, ``d = 0.5``, seconds) with
    :math:`L = \\text{now} - \\text{created\\_at}`, :math:`t_1` the idle time and
    :math:`n = \\text{access\\_count} + 1` presentations (storing counts as one);
  - idle for at least ``archive_idle_days``;
  - ``importance`` below ``important``;
  - of kind ``event``: facts, skills and concepts are knowledge, not episodes, and are
    never archived by age alone.

``semantic`` memories and ``concept`` memories are never moved; ``archived`` memories
are not promoted here (recall rehydrates them). Tiering only relabels: moving an
archived memory's content out of the hot store is the archive job's. The snapshot must
carry embeddings (``Snapshot.read(..., embeddings=True)``): a moved memory is written
back whole, vectors included.

Promotion needs a recent access and demotion an idle time longer than
``working_idle_days``, so the two cannot both apply when ``promote_recent_days <=
working_idle_days`` (checked): a second run at the same ``now`` plans nothing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hippograph.graph.model import Memory, MemoryKind, Tier, to_epoch
from hippograph.graph.scoring import base_level_activation
from hippograph.lifecycle.model import DAY, LifecycleConfig, Plan, Snapshot

__all__ = ["activation", "plan"]


def _last_use(memory: Memory) -> float:
    return to_epoch(memory.last_accessed_at or memory.created_at)


def activation(memories: list[Memory], now: float) -> np.ndarray:
    """ACT-R base-level activation of each memory at ``now`` (see the module docstring).

    A memory stored a day ago and never accessed:
    ``B = ln(86400 ** -0.5) = -5.68``.
    """
    if not memories:
        return np.zeros(0)
    stored = np.array([to_epoch(m.created_at) for m in memories])
    last = np.array([_last_use(m) for m in memories])
    count = np.array([m.access_count + 1 for m in memories])
    return base_level_activation(now - stored, now - last, count)


def _movable(memory: Memory) -> bool:
    return memory.kind != MemoryKind.CONCEPT and memory.tier in (Tier.WORKING, Tier.EPISODIC)


def plan(snapshot: Snapshot, config: LifecycleConfig, now: float) -> Plan:
    """Move memories between tiers by use, as of ``now`` (epoch seconds).

    Returns
    -------
    Plan
        ``changes.memories``: each moved memory, as stored but its tier. ``counts``:
        ``promoted`` (episodic -> working), ``demoted`` (working -> episodic, staying
        there), ``archived`` (to archived, from episodic or, idle long enough, straight
        from working).
    """
    if config.promote_recent_days > config.working_idle_days:
        raise ValueError(
            "promote_recent_days must not exceed working_idle_days "
            "(a memory would be promoted and demoted on alternate runs)"
        )
    candidates = [m for m in snapshot.memories if _movable(m)]
    levels = activation(candidates, now)
    result = Plan("tiering")
    counts = {"promoted": 0, "demoted": 0, "archived": 0}
    for memory, level in zip(candidates, levels.tolist(), strict=True):
        idle_days = (now - _last_use(memory)) / DAY
        tier = memory.tier
        if (
            tier == Tier.EPISODIC
            and memory.last_accessed_at is not None
            and idle_days <= config.promote_recent_days
        ):
            tier = Tier.WORKING
        elif tier == Tier.WORKING and idle_days > config.working_idle_days:
            tier = Tier.EPISODIC
        if (
            tier == Tier.EPISODIC
            and level < config.archive_activation
            and idle_days >= config.archive_idle_days
            and memory.importance < config.important
            and memory.kind == MemoryKind.EVENT
        ):
            tier = Tier.ARCHIVED
        if tier == memory.tier:
            continue
        if memory.embedding is None:
            # ChangeBatch.memories replaces every field: vectors too
            raise ValueError(
                f"memory {memory.id!r} has no embedding: read the snapshot with embeddings"
            )
        result.changes.memories.append(replace(memory, tier=tier))
        if tier == Tier.WORKING:
            counts["promoted"] += 1
        elif tier == Tier.EPISODIC:
            counts["demoted"] += 1
        else:
            counts["archived"] += 1
    result.counts = counts
    return result
