"""The service's encoder wrappers: concurrent calls coalesce into shared model calls
(and one bad text fails only its own caller); per-thread encode time is measured."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from hippograph.api.encoding import CoalescingEncoder
from hippograph.embeddings import HashingEncoder


class HeldEncoder(HashingEncoder):
    """The hashing encoder; its first call waits for ``release``; BAD texts fail."""

    def __init__(self) -> None:
        super().__init__(dim=32)
        self.release = threading.Event()
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.release.wait(timeout=30)
        if any("BAD" in t for t in texts):
            raise ValueError("a bad text")
        return super().encode(texts)


def _wait_for(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_callers_queued_behind_a_model_call_share_the_next_one() -> None:
    inner = HeldEncoder()
    encoder = CoalescingEncoder(inner)
    texts = [f"text number {i}" for i in range(10)]
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = encoder.encode([texts[i]])

    first = threading.Thread(target=call, args=(0,))
    first.start()
    _wait_for(lambda: len(inner.calls) == 1)  # the model is busy with text 0
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 10)]
    for t in others:
        t.start()
    _wait_for(lambda: encoder.waiting == 9)
    inner.release.set()
    for t in [first, *others]:
        t.join(timeout=30)

    assert inner.calls == [[texts[0]], texts[1:]]
    reference = HashingEncoder(dim=32)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(results[i], reference.encode([text]))


def test_a_failing_text_fails_only_its_own_caller() -> None:
    inner = HeldEncoder()
    encoder = CoalescingEncoder(inner)
    outcomes: dict[str, object] = {}

    def call(text: str) -> None:
        try:
            outcomes[text] = encoder.encode([text])
        except ValueError as exc:
            outcomes[text] = exc

    first = threading.Thread(target=call, args=("warm",))
    first.start()
    _wait_for(lambda: len(inner.calls) == 1)
    others = [threading.Thread(target=call, args=(t,)) for t in ("good one", "BAD one", "good two")]
    for t in others:
        t.start()
    _wait_for(lambda: encoder.waiting == 3)
    inner.release.set()
    for t in [first, *others]:
        t.join(timeout=30)

    assert isinstance(outcomes["BAD one"], ValueError)
    for text in ("warm", "good one", "good two"):
        assert isinstance(outcomes[text], np.ndarray)
    assert encoder.waiting == 0
    # the model is free again: a lone caller encodes at once
    assert encoder.encode(["after"]).shape == (1, 32)


def test_large_batches_pass_straight_through() -> None:
    inner = HeldEncoder()
    inner.release.set()
    encoder = CoalescingEncoder(inner, max_texts=4)
    vectors = encoder.encode([f"t{i}" for i in range(10)])
    assert vectors.shape == (10, 32) and encoder.model_calls == 0
