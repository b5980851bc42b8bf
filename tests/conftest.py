"""Fixtures shared by every test package: a small graph over the hashing encoder, and
the real sentence encoder loaded once per session.

The model hub must never be contacted from tests; the bundled weights are local.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

# pytest puts this file's directory, tests/, first on sys.path (no __init__.py here),
# and tests/graph, tests/embeddings and tests/api would then be imported as namespace
# packages in place of the real ones, which the editable install finds only after
# sys.path. The repository root on sys.path makes the real packages win.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from embeddings import Encoder, HashingEncoder  # noqa: E402
from graph import MemoryGraph  # noqa: E402


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
