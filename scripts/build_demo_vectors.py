"""Compute the demo catalog's text embeddings once and bundle them beside it (maintainers only).

    python scripts/build_demo_vectors.py [data/demo-catalog.jsonl.gz]

Ingests the catalog into a temporary engine with the installed all-MiniLM-L6-v2 (the slow step:
minutes on 2 cores), then writes `data/demo-catalog.vectors.npz`: every item text's content hash and
its vector as int8 with one scale per row, tagged with the model files' SHA-256 (embed/bundle.py).
Run it again whenever the demo catalog, the item text or the model changes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from metamedia.embed.bundle import bundle_path_for, model_fingerprint, write_bundle
from metamedia.embed.hybrid import item_text, text_hash
from metamedia.engine import Engine
from metamedia.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def main(catalog: Path) -> None:
    if not catalog.is_file():
        raise SystemExit(f"needs {catalog}; not found")
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        started = time.perf_counter()

        def progress(stage: str, done: int, total: int) -> None:
            if done == total or done % 2048 < 256:
                print(f"{stage} {done}/{total} after {time.perf_counter() - started:.0f} s", flush=True)

        engine.ingest([catalog], progress=progress)
        name = engine.embedder.name
        hashes = sorted({text_hash(name, item_text(item)) for item in engine.store.iter_items()})
        vectors = engine.store.get_embeddings(hashes)
        out = bundle_path_for(catalog)
        write_bundle(out, name, model_fingerprint(engine.embedder.model_path), vectors)
    print(f"{len(vectors)} text embeddings written to {out.name} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "data" / "demo-catalog.jsonl.gz")
