"""`metamedia migrate`: a real-data store goes SQLite → PostgreSQL → SQLite with equal checksums
and the same users, interactions and preference vectors; a dry run changes nothing, an interrupted copy resumes, and verification catches tampering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select, text, update

from metamedia.embed import TextEmbedder
from metamedia.engine import Engine
from metamedia.errors import Conflict
from metamedia.ingest.run import ingest_files
from metamedia.settings import Settings
from metamedia.store.factory import open_store
from metamedia.store.migrate import ShadowReader, VerificationFailed, migrate, table_checksum, verify
from metamedia.store.postgres import normalise_url, open_pg_store
from metamedia.store.schema import embedding_cache, items
from metamedia.vectors import CollectionConfig
from tests.conftest import DATA, MOVIELENS, write_csv_slice

pytestmark = pytest.mark.postgres
MODEL = "all-MiniLM-L6-v2"
USERS = ("ana", "bo", "cy")


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory, embedder: TextEmbedder) -> str:
    """A SQLite store with real catalog rows, embeddings, a vector collection, and users whose
    interactions and preference vectors were recorded through the real engine."""
    tmp = tmp_path_factory.mktemp("migrate_src")
    files = [
        write_csv_slice(DATA / "the-movies-dataset" / "movies_metadata_part1.csv", tmp / "mm.csv", 200),
        write_csv_slice(DATA / "the-movies-dataset" / "keywords.csv", tmp / "kw.csv", 200),
        write_csv_slice(MOVIELENS / "links.csv", tmp / "links.csv", 300),
    ]
    engine = Engine(Settings(data_dir=tmp / "data"), embedder=embedder)
    store = engine.store
    ingest_files(store, files, model_name=MODEL)
    rng = np.random.default_rng(3)
    store.put_embeddings(MODEL, {f"hash{i}": rng.standard_normal(384).astype(np.float32) for i in range(120)})
    col = engine.vectors.create_collection(CollectionConfig(name="clips", dim=16, metric="cosine"))
    ids = store.item_ids()[:100]
    col.upsert(ids, rng.standard_normal((len(ids), 16)).astype(np.float32), [{"n": i} for i in ids])
    col.delete(ids[:5])
    engine.index_items(ids[:12])  # real item vectors, so the preference vectors move
    for n, user in enumerate(USERS):
        watched = ids[4 * n : 4 * n + 4]
        engine.recs.record_interaction(user, watched[0], "rating", value=4.5, idempotency_key=f"{user}-1")
        engine.recs.record_interaction(user, watched[1], "watch", completion=0.9, context={"device": "tv"})
        engine.recs.record_interaction(user, watched[2], "like")
        engine.recs.record_interaction(user, watched[3], "skip", context={"hour": 21})
    url = engine.settings.resolved_database_url
    engine.close()
    return url


def profiles(settings: Settings, embedder: TextEmbedder) -> dict[str, dict[str, Any]]:
    """What `metamedia profile` shows for each user, read through a real engine on `settings`."""
    with Engine(settings, embedder=embedder) as engine:
        return {user: engine.recs.profile(user) for user in USERS}


def _checksums(url: str) -> dict[str, tuple[int, str]]:
    from metamedia.store.migrate import known_tables, open_engine

    engine = open_engine(url)
    names = set(engine.dialect.get_table_names(engine.connect()))
    out = {t.name: table_checksum(engine, t) for t in known_tables() if t.name in names}
    engine.dispose()
    return out


def test_round_trip_sqlite_postgres_sqlite_keeps_every_row(
    source_db: str, pg_url: str, tmp_path: Path, embedder: TextEmbedder
) -> None:
    first = migrate(source_db, pg_url, batch_size=97)
    assert first.copied > 1000
    checks = verify(source_db, pg_url)
    assert {c.name for c in checks} >= {
        "items", "item_sources", "embedding_cache", "vector_points",
        "rec_users", "rec_interactions", "rec_preferences",
    }  # fmt: skip
    back = f"sqlite:///{tmp_path}/back.db"
    migrate(pg_url, back, batch_size=500)
    verify(pg_url, back)
    original, returned = _checksums(source_db), _checksums(back)
    assert original.items() <= returned.items()
    assert original["items"][0] >= 200
    rows = {name: original[name][0] for name in ("rec_users", "rec_interactions", "rec_preferences")}
    assert rows == {"rec_users": 3, "rec_interactions": 12, "rec_preferences": 3}

    # every user comes back with the same history, counts and learned taste
    before = profiles(Settings(data_dir=tmp_path / "src", database_url=source_db), embedder)
    after = profiles(Settings(data_dir=tmp_path / "back", database_url=back), embedder)
    assert after == before
    assert all(p["interactions"] == 4 and p["evidence"] > 0 for p in before.values())
    with Engine(
        Settings(data_dir=tmp_path / "pg", database_url=pg_url, vector_backend="faiss"), embedder=embedder
    ) as on_pg:
        assert on_pg.recs.profile("ana") == before["ana"]
        newest = max(r["id"] for p in before.values() for r in p["recent"])
        again = on_pg.recs.record_interaction("ana", on_pg.store.item_ids()[0], "click")
        assert again["id"] > newest  # the interaction ids continue after the copied ones
        repeat = on_pg.recs.record_interaction(
            "ana", on_pg.store.item_ids()[0], "rating", value=4.5, idempotency_key="ana-1"
        )
        assert repeat["duplicate"] is True  # the copied idempotency keys still deduplicate

    # the PostgreSQL copy is a working store: new items get fresh ids after the copied ones
    pg = open_pg_store(pg_url)
    top = max(pg.item_ids())
    from metamedia.store.base import ItemWrite

    [new_id] = pg.write_items(
        [ItemWrite(None, {"title": "New", "genres": [], "keywords": [], "source": "t"})]
    )
    assert new_id > top
    assert pg.get_item(ids_of(pg)[862]).title == "Toy Story"
    pg.close()


def ids_of(store: object) -> dict[int, int]:
    return store.find_ids("tmdb_id", [862])  # type: ignore[attr-defined]


def test_dry_run_changes_nothing(source_db: str, pg_url: str) -> None:
    report = migrate(source_db, pg_url, dry_run=True)
    by_name = {t.name: t for t in report.tables}
    assert by_name["items"].source_rows >= 200 and by_name["items"].target_rows == 0
    assert report.copied == 0
    engine = create_engine(normalise_url(pg_url))
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one()
    engine.dispose()
    assert tables == 0


def test_interrupted_copy_resumes_without_gaps_or_duplicates(source_db: str, pg_url: str) -> None:
    class Interrupted(Exception):
        pass

    def stop_midway(table: str, copied: int, total: int) -> None:
        if table == "items" and copied >= 100:
            raise Interrupted

    with pytest.raises(Interrupted):
        migrate(source_db, pg_url, batch_size=50, progress=stop_midway)
    with pytest.raises(VerificationFailed):
        verify(source_db, pg_url)
    resumed = migrate(source_db, pg_url, batch_size=50)
    order = [t.name for t in resumed.tables]
    interrupted = resumed.tables[order.index("items")]
    assert all(t.copied == 0 for t in resumed.tables[: order.index("items")])  # finished before
    assert interrupted.resumed_from >= 100
    assert interrupted.resumed_from + interrupted.copied == interrupted.source_rows
    verify(source_db, pg_url)
    again = migrate(source_db, pg_url)
    assert again.copied == 0


def test_verification_fails_loudly_on_a_tampered_row(source_db: str, pg_url: str) -> None:
    migrate(source_db, pg_url)
    engine = create_engine(normalise_url(pg_url))
    with engine.begin() as conn:
        some_id = conn.execute(select(func.min(items.c.id))).scalar_one()
        conn.execute(update(items).where(items.c.id == some_id).values(title="Tampered"))
        some_hash = conn.execute(select(func.min(embedding_cache.c.content_hash))).scalar_one()
        flipped = np.zeros(384, dtype=np.float32).tobytes()
        conn.execute(
            update(embedding_cache).where(embedding_cache.c.content_hash == some_hash).values(vector=flipped)
        )
    engine.dispose()
    with pytest.raises(VerificationFailed) as err:
        verify(source_db, pg_url)
    bad = {d["table"]: d for d in err.value.detail}  # type: ignore[union-attr]
    assert set(bad) == {"items", "embedding_cache"}
    assert not bad["items"]["checksums_equal"] and bad["items"]["source_rows"] == bad["items"]["target_rows"]


def test_migrating_into_a_non_empty_database_is_refused(source_db: str, pg_url: str) -> None:
    store = open_pg_store(pg_url)
    store.set_meta("already", "here")
    store.close()
    with pytest.raises(Conflict):
        migrate(source_db, pg_url)


def test_shadow_reads_count_differences(source_db: str, pg_url: str) -> None:
    migrate(source_db, pg_url)
    lite, pg = open_store(source_db), open_pg_store(pg_url)
    shadow = ShadowReader(lite, pg)
    ids = shadow.item_ids()
    assert shadow.get_items(ids[:50]) == pg.get_items(ids[:50])
    assert shadow.differences == 0 and shadow.reads == 2
    pg.set_meta("only_in_pg", "x")
    lite_value = shadow.get_meta("only_in_pg")
    assert lite_value is None and shadow.differences == 1
    lite.close()
    pg.close()


def test_cli_copies_verifies_and_reports_json(source_db: str, pg_url: str) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from metamedia.cli.migrate import migrate_command

    app = typer.Typer()
    app.command("migrate")(migrate_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    dry = runner.invoke(app, ["migrate", "--from", source_db, "--to", pg_url, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["verified"] == []
    done = runner.invoke(
        app, ["migrate", "--from", source_db, "--to", pg_url, "--batch-size", "300", "--json"]
    )
    assert done.exit_code == 0, done.output
    verified = {v["table"]: v["rows"] for v in json.loads(done.stdout)["verified"]}
    assert verified["items"] >= 200
    refused = runner.invoke(app, ["migrate", "--from", pg_url, "--to", source_db])
    assert refused.exit_code == Conflict.exit_code
