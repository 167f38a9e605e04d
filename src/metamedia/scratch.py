"""An engine on a throw-away copy of a data folder, for replays that must not touch the real store."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from .embed.model import TextEmbedder
from .engine import Engine
from .errors import InvalidInput
from .settings import Settings


@contextmanager
def scratch_engine(settings: Settings, embedder: TextEmbedder | None = None) -> Iterator[Engine]:
    """An engine on a temporary copy of ``settings.data_dir`` (SQLite stores only), closed and removed after."""
    if settings.database_url:
        raise InvalidInput("the served-path replay copies an SQLite data folder; this store is not SQLite")
    with tempfile.TemporaryDirectory(prefix="metamedia-replay-") as tmp:
        data_dir = Path(tmp) / "data"
        shutil.copytree(Path(settings.data_dir), data_dir)
        engine = Engine(settings.replace(data_dir=data_dir), embedder=embedder)
        # The copy is thrown away afterwards: its commits need not reach the disk (no fsync per
        # commit). This changes durability only, never what is stored or ranked.
        event.listen(engine.db, "connect", _no_fsync)
        engine.db.dispose()
        try:
            yield engine
        finally:
            engine.close()


def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()
