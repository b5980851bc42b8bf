"""hippograph: graph-centric associative memory for AI agents.

The distribution keeps its code in four top-level folders and installs them under this
name (``pyproject.toml``, setuptools ``package-dir``), so nothing collides with another
``graph`` or ``api`` in a user's environment:

- :mod:`hippograph.embeddings`: the sentence encoder and the FAISS index;
- :mod:`hippograph.graph`: the memory graph, its stores and recall;
- :mod:`hippograph.lifecycle`: decay, tiering, dedup, consolidation, archiving;
- :mod:`hippograph.api`: GraphQL over uvicorn, the CLI, settings and benchmarks.
"""

__version__ = "0.1.0"
