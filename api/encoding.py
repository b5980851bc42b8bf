"""Embedding under concurrent requests: :class:`CoalescingEncoder`.

This module owns how the service shares the one sentence model between requests. The
model runs one call at a time (``embeddings.Encoder`` holds a lock), and on a CPU one
call for sixteen short queries costs little more than a call for one. So concurrent
``encode`` calls are coalesced: while the model is busy, callers queue; when it frees,
the next caller encodes everything queued in one call and hands each caller its rows.
A lone caller pays nothing extra — it finds the model free and encodes at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hippograph.embeddings import TextEncoder

__all__ = ["CoalescingEncoder"]


@dataclass(eq=False)
class _Call:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None
    leads: bool = False  # woken to encode the queue, not with a result


class CoalescingEncoder:
    """A :class:`~embeddings.TextEncoder` whose concurrent calls share model calls.

    Parameters
    ----------
    inner:
        The encoder doing the work.
    max_texts:
        At most this many texts per coalesced call. A call with more texts than this (a
        large ``rememberMany``) is passed straight through, on its own.

    Notes
    -----
    Group commit, as databases flush their logs: the caller that finds the model free
    leads; it encodes the queue (its own texts first) and, if more callers queued
    meanwhile, wakes the first of them to lead the next call. If a coalesced call fails,
    each caller's texts are encoded again on their own, so one bad text fails only its
    own request.
    """

    def __init__(self, inner: TextEncoder, *, max_texts: int = 64) -> None:
        self.inner = inner
        self.max_texts = max_texts
        self._lock = threading.Lock()
        self._queue: list[_Call] = []
        self._busy = False
        self.model_calls = 0  # coalesced calls made (for tests and curiosity)

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def waiting(self) -> int:
        """Callers queued behind the call in progress."""
        with self._lock:
            return len(self._queue)

    def encode_one(self, text: str) -> np.ndarray:
        result: np.ndarray = self.encode([text])[0]
        return result

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        if not items or len(items) > self.max_texts:
            return self.inner.encode(items)
        call = _Call(items)
        with self._lock:
            self._queue.append(call)
            leads = not self._busy
            self._busy = True
        if not leads:
            call.done.wait()
            if not call.leads:
                return self._outcome(call)
        self._lead()
        return self._outcome(call)

    @staticmethod
    def _outcome(call: _Call) -> np.ndarray:
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def _lead(self) -> None:
        """Encode one batch from the head of the queue (the leader's own call is the head),
        then pass the lead on, or free the model."""
        with self._lock:
            batch: list[_Call] = []
            total = 0
            while self._queue and (
                not batch or total + len(self._queue[0].texts) <= self.max_texts
            ):
                total += len(self._queue[0].texts)
                batch.append(self._queue.pop(0))
        try:
            self._encode(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.done.set()
                else:
                    self._busy = False

    def _encode(self, batch: list[_Call]) -> None:
        try:
            self.model_calls += 1
            vectors = self.inner.encode([t for call in batch for t in call.texts])
            start = 0
            for call in batch:
                call.result = vectors[start : start + len(call.texts)]
                start += len(call.texts)
        except Exception:
            if len(batch) == 1:
                raise
            for call in batch:  # find whose texts fail; the others still get answers
                try:
                    call.result = self.inner.encode(call.texts)
                except Exception as exc:
                    call.error = exc
        finally:
            for call in batch:
                if call.result is None and call.error is None:
                    call.error = RuntimeError("encoding was interrupted")
                call.leads = False
                call.done.set()
