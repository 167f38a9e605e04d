"""An engine on a throw-away copy of a data folder, for replays that must not touch the real store."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
        try:
            yield engine
        finally:
            engine.close()
