"""Fixtures shared by every test package: a small graph over the hashing encoder, and
the real sentence encoder loaded once per session.

The model hub must never be contacted from tests; the bundled weights are local.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from embeddings import Encoder, HashingEncoder
from graph import MemoryGraph


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The real all-MiniLM-L6-v2 encoder (seconds to load: once per session)."""
    return Encoder()


@pytest.fixture
def hashing_graph(tmp_path: Path) -> Iterator[MemoryGraph]:
    """A MemoryGraph over ``tmp_path / "graph"`` with the tiny hashing encoder."""
    graph = MemoryGraph(tmp_path / "graph", encoder=HashingEncoder(dim=64))
    yield graph
    graph.close()
