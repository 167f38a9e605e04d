"""The bundled demo: its catalog, the catalog's shipped text embeddings, and a MovieLens community.

Files beside the demo catalog (data/ in the repository; see data/README.md):

    demo-catalog.jsonl.gz                      the catalog (13,273 real movies)
    demo-catalog.vectors.npz                   its text embeddings, tagged with the model files' hashes
    movielens-latest-small/ratings.csv.gz      100,836 real ratings by 610 users: the community
    movielens-latest-small/links.csv.gz        MovieLens -> TMDB ids

The state of the first load is kept in `<data_dir>/demo-state.json`, so a load stopped half-way
(SIGTERM, power cut) is finished on the next start: ingest and the ratings import are idempotent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .embed.bundle import BundleMismatch, bundle_path_for, load_matching_bundle
from .embed.hybrid import item_text, text_hash
from .ingest.run import IngestReport, Progress

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("metamedia.demo")

STATE_FILE = "demo-state.json"
DONE = "done"


@dataclass(frozen=True)
class DemoFiles:
    catalog: Path
    vectors: Path
    ratings: Path
    links: Path

    @classmethod
    def beside(cls, catalog: Path) -> DemoFiles:
        movielens = catalog.parent / "movielens-latest-small"
        return cls(
            catalog, bundle_path_for(catalog), movielens / "ratings.csv.gz", movielens / "links.csv.gz"
        )


def _read_state(engine: Engine) -> dict[str, Any]:
    path = Path(engine.settings.data_dir) / STATE_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _write_state(engine: Engine, state: dict[str, Any]) -> None:
    path = Path(engine.settings.data_dir) / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def prime_shipped_embeddings(engine: Engine, bundle: Path) -> int:
    """Put the bundle's text embeddings into the embedding cache when the installed model made them.

    Returns how many were put; when the bundle is missing or its tag differs, logs why and returns 0
    (the catalog is then embedded on load, as without a bundle)."""
    if not bundle.is_file():
        log.info("no shipped embeddings at %s: the catalog will be embedded on load", bundle.name)
        return 0
    try:
        shipped = load_matching_bundle(bundle, engine.embedder.name, engine.embedder.model_path)
    except BundleMismatch as exc:
        log.warning("shipped embeddings not used, the catalog will be embedded instead: %s", exc.message)
        return 0
    engine.store.put_embeddings(engine.embedder.name, shipped.vectors)
    log.info("shipped embeddings match the installed model: %d text vectors loaded", len(shipped.vectors))
    return len(shipped.vectors)


def shipped_coverage(engine: Engine, bundle: Path) -> tuple[int, int]:
    """(items whose text has a shipped vector, items) — how much of the catalog skipped the model."""
    shipped = load_matching_bundle(bundle, engine.embedder.name, engine.embedder.model_path)
    name = engine.embedder.name
    hashes = [text_hash(name, item_text(item)) for item in engine.store.iter_items()]
    return sum(1 for h in hashes if h in shipped.vectors), len(hashes)


def load_demo_catalog(
    engine: Engine, catalog: Path, *, progress: Progress | None = None
) -> IngestReport | None:
    """Ingest the demo catalog on first start (empty store) or to finish a load that was stopped."""
    state = _read_state(engine)
    if state.get("catalog") == DONE or (not state and engine.count() > 0):
        return None
    if not catalog.is_file():
        log.warning("demo catalog %s not found: starting with an empty catalog", catalog)
        return None
    _write_state(engine, {**state, "catalog": "loading"})
    log.info("loading demo catalog %s", catalog.name)
    prime_shipped_embeddings(engine, DemoFiles.beside(catalog).vectors)
    report = engine.ingest([catalog], progress=progress)
    _write_state(engine, {**_read_state(engine), "catalog": DONE})
    log.info("demo catalog loaded: %d items", report.accepted)
    return report


def load_demo_community(
    engine: Engine, catalog: Path, *, progress: Progress | None = None
) -> dict[str, Any] | None:
    """Import the bundled MovieLens ratings as users `ml-<userId>` once the demo catalog is loaded."""
    state = _read_state(engine)
    files = DemoFiles.beside(catalog)
    if state.get("catalog") != DONE or state.get("community") == DONE or not files.ratings.is_file():
        return None
    log.info("importing the MovieLens community (%s)", files.ratings.name)
    report: dict[str, Any] = engine.recs.import_ratings(
        files.ratings, files.links if files.links.is_file() else None, progress=progress
    )
    _write_state(engine, {**_read_state(engine), "community": DONE})
    log.info(
        "MovieLens community imported: %d ratings by %d users on %d items in %.1f s",
        report["imported"], report["users"], report["items"], report["seconds"],
    )  # fmt: skip
    return report
