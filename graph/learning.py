"""Recall's side effects: what a recall teaches the graph, written back in the background.

Each recall that ``learn``s records an access on the memories it returned (recency,
count, promotion from episodic to working) and strengthens the associations among its
top results (Hebbian: ``w += rate * (1 - w)``, capped). Both change the in-memory view at
once and wait in the namespace's pending maps; a background thread writes them to the
store (one ``record_access`` per flush), so no recall waits for a commit. A failed flush
puts what it took back for the next one.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import numpy as np

from hippograph.graph.model import Tier, to_epoch
from hippograph.graph.namespace import Namespace, Namespaces
from hippograph.graph.store import AccessRecord

__all__ = ["AccessWriter"]

logger = logging.getLogger(__name__)

TIERS = list(Tier)
WORKING = TIERS.index(Tier.WORKING)
EPISODIC = TIERS.index(Tier.EPISODIC)


class AccessWriter:
    """Records recall side effects and writes them back from one background thread."""

    def __init__(self, namespaces: Namespaces) -> None:
        self.store = namespaces.store
        self.config = namespaces.config
        self.namespaces = namespaces
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def touch(self, ns: Namespace, ids: list[str], at: datetime) -> None:
        """Record a use of the stored memories ``ids`` at ``at`` (remembered again), as
        a recall returning them would, without strengthening anything."""
        seqs = list(self.store.seqs_of(ns.name, ids).values())
        with ns.lock:
            nodes = ns.view.index_of(np.array(seqs, np.int64))
            nodes = nodes[nodes >= 0]
            if len(nodes):
                self.learn(ns, nodes, to_epoch(at), strengthen=False)

    def learn(
        self, ns: Namespace, chosen: np.ndarray, at: float, *, strengthen: bool = True
    ) -> None:
        """Record that ``chosen`` (view nodes, best first) were recalled at ``at``. The
        caller holds the namespace's lock."""
        cfg = self.config
        view = ns.view
        promote = np.where(view.tier[chosen] == EPISODIC, WORKING, view.tier[chosen])
        view.touch(chosen, at, promote.astype(np.int8))
        for node, tier in zip(chosen.tolist(), promote.tolist(), strict=True):
            seq = int(view.seq[node])
            held = ns.pending_access.get(seq)
            count = held.count + 1 if held else 1
            at_latest = max(held.at, at) if held else at
            ns.pending_access[seq] = AccessRecord(seq, at_latest, TIERS[tier], count)
        if strengthen and cfg.hebbian_rate > 0:
            top = chosen[: cfg.hebbian_top]
            for i, j, t, w in view.edges_among(top):
                strengthened = min(cfg.hebbian_max, w + cfg.hebbian_rate * (1.0 - w))
                if strengthened <= w:
                    continue
                view.set_weight(i, j, t, strengthened)
                ns.pending_edges[(int(view.seq[i]), int(view.seq[j]), t)] = (strengthened, at)
        ns.dirty = True
        self.request(now=len(ns.pending_access) >= cfg.access_flush_every)

    def flush(self, ns: Namespace) -> None:
        """Write pending recall side effects to the store. The caller holds the
        namespace's write lock; recalls go on meanwhile (they add to fresh pending maps;
        on failure what was taken is put back for the next flush)."""
        with ns.lock:
            if not ns.pending_access and not ns.pending_edges:
                return
            accesses, ns.pending_access = ns.pending_access, {}
            edges, ns.pending_edges = ns.pending_edges, {}
        try:
            generation = self.store.record_access(
                ns.name,
                list(accesses.values()),
                [(s, d, t, w, at) for (s, d, t), (w, at) in edges.items()],
            )
        except BaseException:
            with ns.lock:
                for seq, record in accesses.items():
                    newer = ns.pending_access.get(seq)
                    if newer is not None:
                        record = AccessRecord(
                            seq, max(record.at, newer.at), newer.tier, record.count + newer.count
                        )
                    ns.pending_access[seq] = record
                for key, value in edges.items():
                    ns.pending_edges.setdefault(key, value)
            raise
        with ns.lock:
            self.namespaces.advance(ns, generation)

    def request(self, now: bool = True) -> None:
        """Make sure the write-back thread runs; with ``now``, wake it at once."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._loop, name="hippograph-access-flush", daemon=True
                    )
                    self._thread.start()
        if now:
            self._wake.set()

    def stop(self) -> None:
        """End the write-back thread (what is pending stays for a checkpoint)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.config.access_flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            for ns in self.namespaces.loaded():
                if ns.pending_access or ns.pending_edges:
                    try:
                        with ns.write_lock:
                            self.flush(ns)
                    except Exception:  # the next flush or checkpoint retries
                        logger.exception("writing back recall accesses of %r failed", ns.name)
