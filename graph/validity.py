"""Which memories are still valid: a memory stops being valid when a newer one
supersedes it.

A ``SUPERSEDES`` association ``new -> old`` says that ``new`` restates ``old`` with a
changed value (a caller's ``supersedes``, ``updateMemory``, or the rule of
:mod:`hippograph.graph.supersession`). Validity is read off the graph, not stored
beside it, so it can never disagree with the associations (an import, a restore or a
rehydration carries it along with the edges):

.. math::

    \\text{invalid\\_at}(m) = \\min \\{ \\text{occurred\\_at}(s) :
        s \\xrightarrow{\\text{SUPERSEDES}} m,\\ s \\text{ live} \\}

(``inf`` when nothing supersedes ``m``), and ``m`` is valid at time ``t`` when
``t < invalid_at(m)``: the rescheduled appointment is the valid one from when the
change was made, and a question *as of* an earlier time gets the old one (recall's
``asOf`` also leaves out what had not happened by then).

Example: ``b`` (occurred day 5) supersedes ``a`` (day 1). At day 3 ``a`` is valid
(and ``b`` had not happened); from day 5 on ``a`` is not.
"""

from __future__ import annotations

import numpy as np

from hippograph.graph.activation import REVERSE
from hippograph.graph.model import AssociationType
from hippograph.graph.view import NamespaceView

__all__ = ["invalid_at", "reaches", "superseders", "valid_at"]

_SUPERSEDES = AssociationType.SUPERSEDES.code
_SUPERSEDED_BY = _SUPERSEDES + REVERSE


def superseders(view: NamespaceView, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slot, node) pairs: the live memories that supersede each of ``nodes``."""
    slots, found = view.typed_neighbours(np.asarray(nodes, dtype=np.int64), _SUPERSEDED_BY)
    live = view.alive[found] & view.is_memory[found]
    return slots[live], found[live]


def invalid_at(view: NamespaceView, nodes: np.ndarray) -> np.ndarray:
    """Epoch seconds from which each of ``nodes`` is no longer valid (``inf``: valid)."""
    nodes = np.asarray(nodes, dtype=np.int64)
    result = np.full(len(nodes), np.inf)
    slots, found = superseders(view, nodes)
    if len(slots):
        np.minimum.at(result, slots, view.occurred_at[found])
    return result


def valid_at(view: NamespaceView, nodes: np.ndarray, t: float) -> np.ndarray:
    """Whether each of ``nodes`` was still valid at ``t``: nothing that supersedes it
    had happened by then."""
    return invalid_at(view, nodes) > t


def reaches(view: NamespaceView, start: int, goal: int) -> bool:
    """Whether ``goal`` is ``start`` or among the memories ``start`` supersedes,
    directly or down a chain: a ``SUPERSEDES`` edge ``goal -> start`` would close a
    cycle then."""
    seen = {start}
    frontier = np.array([start], np.int64)
    while len(frontier):
        if goal in seen:
            return True
        _, found = view.typed_neighbours(frontier, _SUPERSEDES)
        fresh = [int(n) for n in found.tolist() if int(n) not in seen]
        seen.update(fresh)
        frontier = np.array(fresh, np.int64)
    return goal in seen
