"""The outside of hippograph: settings and the composition root, the CLI, and (later)
the GraphQL schema and ASGI app. Everything here is a thin layer over ``graph``."""

from hippograph.api.settings import Settings, open_graph

__all__ = ["Settings", "open_graph"]
