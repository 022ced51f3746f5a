"""Embedders: text to vectors, one implementation per runtime."""

from .base import Embedder, Progress

__all__ = ["Embedder", "Progress"]
