"""Decay: association weights fall exponentially with the time an edge has been idle,
and an edge that falls under the floor goes.

An edge of type :math:`\\tau` idle for :math:`\\Delta` days keeps

.. math::

    w' = w \\cdot 0.5^{\\Delta / h_\\tau}

of its weight, where :math:`h_\\tau` is the type's half-life
(``LifecycleConfig.half_life_days``), times ``explicit_slowdown`` for an edge a caller
created explicitly. Every edge decays, ``MENTIONS`` edges to entity nodes and
``PART_OF`` edges to concepts included; memories themselves are never removed here.

Anchoring (why a second run at the same time changes nothing)
--------------------------------------------------------------
The store keeps one weight per edge and no "decayed until" time, and the edge's
``last_activated_at`` must stay the time it was last *activated* (recall reads it), so
decay cannot stamp its own time on the edge. Instead the caller says when decay last
ran: ``since``, the ``now`` of the previous applied decay run. A stored weight is then
already decayed up to ``since``, and this run decays it only over the time since its
anchor

.. math::

    a = \\max(\\text{last\\_activated\\_at} \\text{ (else created\\_at)}, \\text{since}),
    \\qquad \\Delta = \\max(0, \\text{now} - a).

Because :math:`0.5^{x} \\cdot 0.5^{y} = 0.5^{x+y}`, runs at :math:`t_1 < t_2` with
``since`` chained decay an untouched edge exactly as one run at :math:`t_2` would; a
second run at the same ``now`` (``since = now``) has :math:`\\Delta = 0` and plans
nothing. An edge activated (Hebbian-strengthened) after ``since`` decays from that
activation, when recall set its weight. ``since=None`` means decay never ran: every
edge decays from its last activation, else its creation.

A run that crashed before its commit changed nothing and recorded no run, so the next
run passes the older ``since`` and does the whole interval again (resumable).
"""

from __future__ import annotations

from dataclasses import replace

from hippograph.graph.model import Association, to_epoch
from hippograph.lifecycle.model import DAY, LifecycleConfig, Plan, Snapshot

__all__ = ["decayed_weight", "plan"]


def decayed_weight(weight: float, idle_days: float, half_life_days: float) -> float:
    """``weight * 0.5 ** (idle_days / half_life_days)``; no decay for ``idle_days <= 0``.

    >>> decayed_weight(0.8, 30.0, 30.0)
    0.4
    >>> decayed_weight(0.8, 60.0, 30.0)
    0.2
    >>> decayed_weight(0.8, -1.0, 30.0)
    0.8
    """
    if idle_days <= 0.0:
        return weight
    return weight * 0.5 ** (idle_days / half_life_days)


def _half_life(edge: Association, config: LifecycleConfig) -> float | None:
    """The edge's half-life in days; None (no decay) when its type has none configured."""
    days = config.half_life_days.get(edge.type.value)
    if days is None:
        return None
    return days * config.explicit_slowdown if edge.explicit else days


def plan(
    snapshot: Snapshot, config: LifecycleConfig, now: float, *, since: float | None = None
) -> Plan:
    """Decay every association of ``snapshot`` to time ``now`` (epoch seconds).

    Parameters
    ----------
    snapshot:
        The namespace's memories and associations.
    config:
        ``half_life_days`` (per association type; a type without one does not decay),
        ``explicit_slowdown`` (> 0) and ``edge_floor``.
    now:
        Epoch seconds to decay to.
    since:
        Epoch seconds of the previous applied decay run (its ``now``), or None if decay
        never ran on this namespace. See the module docstring: weights are taken as
        already decayed up to ``since``.

    Returns
    -------
    Plan
        ``changes.edges``: decayed edges (everything as stored but the weight);
        ``changes.removed_edges``: edges whose decayed weight is under ``edge_floor``.
        ``counts``: ``edges`` (checked), ``decayed`` (kept with a lower weight),
        ``removed``.

    Examples
    --------
    A ``SIMILAR_TO`` edge (half-life 30 days) of weight 0.8, last activated 30 days ago,
    halves to 0.4; run again with ``since=now`` it stays 0.4.
    """
    if config.explicit_slowdown <= 0.0:
        raise ValueError("explicit_slowdown must be positive")
    for name, days in config.half_life_days.items():
        if not days > 0.0:
            raise ValueError(f"half_life_days[{name!r}] must be positive, got {days}")
    result = Plan("decay")
    changes = result.changes
    decayed = 0
    for edge in snapshot.associations:
        half_life = _half_life(edge, config)
        if half_life is None:
            continue
        anchor = to_epoch(edge.last_activated_at or edge.created_at)
        if since is not None:
            anchor = max(anchor, since)
        weight = decayed_weight(edge.weight, (now - anchor) / DAY, half_life)
        if weight < config.edge_floor:
            changes.removed_edges.append((edge.source, edge.target, edge.type))
        elif weight < edge.weight:
            changes.edges.append(replace(edge, weight=weight))
            decayed += 1
    result.counts = {
        "edges": len(snapshot.associations),
        "decayed": decayed,
        "removed": len(changes.removed_edges),
    }
    return result
