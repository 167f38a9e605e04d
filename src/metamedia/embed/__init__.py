"""Local text embeddings and the hybrid content vector."""

from .model import TextEmbedder

__all__ = ["TextEmbedder"]
