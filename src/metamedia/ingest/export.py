"""Export the catalog as JSON Lines in the documented catalog schema (docs/catalog-jsonl.md)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from ..store.sql import SqlCatalogStore
from .merge import MERGED_FIELDS

EXPORT_FIELDS = MERGED_FIELDS  # the export is exactly what the merge produces, so it round-trips


def export_catalog(store: SqlCatalogStore, path: Path) -> int:
    """Write every item as one JSON object per line (gzip when the name ends in .gz), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as out:
        for item in store.iter_items():
            row = {k: getattr(item, k) for k in EXPORT_FIELDS}
            out.write(
                json.dumps({k: v for k, v in row.items() if v not in (None, "", [])}, ensure_ascii=False)
                + "\n"
            )
            count += 1
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return count
