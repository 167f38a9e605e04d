"""The store of record: backends behind one interface, chosen by URL."""

from .base import CatalogStore, ItemWrite, SourceRow
from .factory import open_store

__all__ = ["CatalogStore", "ItemWrite", "SourceRow", "open_store"]
