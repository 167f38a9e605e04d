"""Shared fixtures: the real data slices under tests/data, one embedding model per session, real engines
on temp dirs. Nothing here reads outside the repository."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgfixtures import pg_server, pg_url  # noqa: F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # real slices of the public datasets, attribution in DATA / "SOURCES.md"
SHARED = DATA  # the old name of this folder, kept for branches in flight
TMDB_5000 = DATA / "tmdb-5000" / "tmdb_5000_movies.csv"
MOVIELENS = DATA / "movielens-latest-small"
DEMO_CATALOG = REPO / "data" / "demo-catalog.jsonl.gz"
TMDB_5000_FILMS = 4803  # the demo catalog starts with the TMDB 5000 films, merged with the other sources


def write_csv_slice(src: Path, dest: Path, rows: int) -> Path:
    """Copy the header and the first `rows` records of a real CSV file (quoted newlines kept intact)."""
    csv.field_size_limit(sys.maxsize)
    with (
        open(src, newline="", encoding="utf-8") as fin,
        open(dest, "w", newline="", encoding="utf-8") as fout,
    ):
        reader, writer = csv.reader(fin), csv.writer(fout)
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i >= rows:
                break
            writer.writerow(row)
    return dest


def demo_catalog_slice(dest: Path, rows: int) -> Path:
    """The first `rows` items of the bundled demo catalog, as a JSON Lines file."""
    with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8") as fin, open(dest, "w", encoding="utf-8") as fout:
        for i, line in enumerate(fin):
            if i >= rows:
                break
            fout.write(line)
    return dest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from metamedia.embed import TextEmbedder

    return TextEmbedder()


@pytest.fixture(scope="module")
def one_thread_embedder(embedder) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The session embedder with one torch thread: tests embedding one sentence at a time on 2 shared
    cores run faster without oversubscription."""
    embedder._load()
    before = embedder.threads
    embedder.threads = 1
    yield embedder
    embedder.threads = before


@pytest.fixture(scope="session")
def catalog_engine(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A real engine over the 4,803 TMDB 5000 films of the bundled demo catalog, with the catalog's shipped
    text embeddings (tests/test_demo_bundle.py proves them equal to the model's)."""
    from metamedia.demo import prime_shipped_embeddings
    from metamedia.embed.bundle import bundle_path_for
    from metamedia.engine import Engine
    from metamedia.settings import Settings

    data_dir = tmp_path_factory.mktemp("catalog")
    films = demo_catalog_slice(tmp_path_factory.mktemp("catalog_src") / "tmdb5000.jsonl", TMDB_5000_FILMS)
    engine = Engine(Settings(data_dir=data_dir), embedder=embedder)
    prime_shipped_embeddings(engine, bundle_path_for(DEMO_CATALOG))  # the model embeds only if they differ
    engine.ingest([films])
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 real TMDB 5000 rows, as a CSV file."""
    return write_csv_slice(TMDB_5000, tmp_path_factory.mktemp("slice") / "tmdb_slice.csv", 300)


def cli_ingest(data_dir: Path, catalog: Path) -> subprocess.CompletedProcess[str]:
    """`metamedia ingest` in a process of its own (another process than the test's engine)."""
    return subprocess.run(
        [sys.executable, "-m", "metamedia.cli", "--data-dir", str(data_dir), "ingest", "--json", str(catalog)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port for the session (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; the Makefile installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
