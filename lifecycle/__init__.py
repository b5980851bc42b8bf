"""Lifecycle jobs that keep a months-old memory graph small and relevant: decay,
tiering, dedup, consolidation into concepts, and archiving of cold subgraphs.

Not built yet; see the project's lifecycle issue.
"""

__all__: list[str] = []
