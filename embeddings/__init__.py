"""Text embeddings and vector search for hippograph.

This package owns turning text into unit vectors (:class:`Encoder`, :class:`HashingEncoder`)
and finding nearest neighbours among them (:class:`VectorIndex`). It knows nothing about the
graph: ids are opaque non-negative int64s chosen by the caller.
"""

from hippograph.embeddings.encoder import Encoder, HashingEncoder, ModelIntegrityError, TextEncoder
from hippograph.embeddings.index import VectorIndex

__all__ = ["Encoder", "HashingEncoder", "ModelIntegrityError", "TextEncoder", "VectorIndex"]
