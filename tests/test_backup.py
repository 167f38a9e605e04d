"""`metamedia backup`: a real store (catalog, users, interactions, bandit decisions, agent memory, API
keys) goes SQLite → backup → PostgreSQL → backup → SQLite with equal checksums everywhere and the same
answers; damaged files and occupied targets are refused without touching anything."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, inspect, select, text
from typer.testing import CliRunner

from metamedia.api.keys import KeyStore, api_keys
from metamedia.engine import Engine
from metamedia.errors import Conflict
from metamedia.memory.facade import MemoryFacade
from metamedia.recommend.storage import interactions
from metamedia.settings import Settings
from metamedia.store.backup import (
    BackupCorrupt,
    BackupIncompatible,
    BackupTargetNotEmpty,
    create_backup,
    restore_backup,
    verify_backup,
)
from metamedia.store.backup_format import RowChecksum, TableEntry, decode_row, encode_row, manifest_table
from metamedia.store.base import ItemWrite
from metamedia.store.factory import open_store
from metamedia.store.migrate import known_tables, open_engine, table_checksum
from metamedia.store.postgres import normalise_url
from metamedia.store.schema import embedding_cache
from tests.conftest import write_csv_slice

pytestmark = pytest.mark.postgres
QUERY = "astronauts lost in space"
MOVIES = 150
# Tables the fixture fills through the real services; each must come back row for row.
FILLED = {
    "items", "item_sources", "embedding_cache", "vector_collections", "vector_points", "rec_users",
    "rec_interactions", "rec_preferences", "memory_strategies", "memory_episodes", "bandit_arms",
    "bandit_decisions", "bandit_outcomes", "api_keys",
}  # fmt: skip


@dataclass
class Source:
    url: str
    backup: Path
    searched: list[int]
    recommended: list[tuple[int, str]]


def _ids(result: dict[str, Any]) -> list[int]:
    return [r["id"] for r in result["results"]]


def _recommended(engine: Engine) -> list[tuple[int, str]]:
    out = engine.recs.recommend("alice", 5, algorithm="content")
    return [(r["id"], "; ".join(r["reasons"])) for r in out["results"]]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, small_catalog: Path, embedder: Any) -> Source:
    """150 real TMDB movies plus what users, the bandit, agent memory and key management write."""
    base = tmp_path_factory.mktemp("backup_source")
    engine = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    engine.ingest([write_csv_slice(small_catalog, base / "movies.csv", MOVIES)])  # embedding is the cost
    ids = engine.store.item_ids()
    recs = engine.recs
    for item in ids[:8]:
        recs.record_interaction("alice", item, "like", context={"device": "tv", "hour": 21})
    recs.record_interaction("alice", ids[9], "rating", value=4.5, idempotency_key="alice-r1")
    recs.record_interaction("bob", ids[20], "watch", watch_seconds=3600.0)
    served = recs.recommend("bob", 5, algorithm="auto")
    recs.record_interaction("bob", served["results"][0]["id"], "skip", decision_id=served["decision_id"])
    recs.record_interaction("bob", served["results"][1]["id"], "watch", completion=0.9,
                            decision_id=served["decision_id"])  # fmt: skip
    MemoryFacade(engine).strategy_store(
        "Short films late at night", "After 23:00 prefer films under 100 minutes.", "recommendation",
        tags=["night"], heuristics=["runtime < 100 after 23:00"],
    )  # fmt: skip
    KeyStore(engine.store.engine).create(["read", "write"], user_id="alice", name="alice's phone")
    recs.refresh()
    searched = _ids(engine.search(QUERY, 5))
    recommended = _recommended(engine)
    url = engine.settings.resolved_database_url
    engine.close()
    backup = base / "source.tar"
    create_backup(url, backup, batch_size=64)
    return Source(url, backup, searched, recommended)


def _checksums(url: str) -> dict[str, tuple[int, str]]:
    engine = open_engine(url)
    present = set(inspect(engine).get_table_names())
    out = {t.name: table_checksum(engine, t) for t in known_tables() if t.name in present}
    engine.dispose()
    return out


def _in_manifest(manifest: Any) -> dict[str, tuple[int, str]]:
    return {t.name: (t.rows, t.checksum) for t in manifest.tables}


def _rows(engine: Engine, table: Any) -> int:
    with engine.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _answers_on(url: str, data_dir: Path, embedder: Any, source: Source) -> None:
    """A server opened on a restored database answers as the original did, and keeps working."""
    engine = Engine(Settings(data_dir=data_dir, database_url=url), embedder=embedder)
    try:
        check = engine.check_index()
        # faiss rebuilds its index from the restored vector rows on open; a pgvector index is not in
        # the backup (derived data) and is rebuilt by the repair a server runs on start
        assert check["ok"] or engine.vector_backend == "pgvector", check
        cached = _rows(engine, embedding_cache)
        engine.repair_index()
        check = engine.check_index()
        assert check["ok"] and check["indexed"] == check["items"] == MOVIES, check
        assert (
            _rows(engine, embedding_cache) == cached
        )  # repaired from the restored cache: nothing re-embedded
        found = _ids(engine.search(QUERY, 5))
        if engine.vector_backend == "pgvector":
            # the lexical stage ranks with PostgreSQL's own full-text scoring (ts_rank_cd, not FTS5's
            # bm25): the same best answer and mostly the same items, not necessarily the same order
            assert found[0] == source.searched[0] and len(set(found) & set(source.searched)) >= 3, found
        else:
            assert found == source.searched
        engine.recs.refresh()
        assert _recommended(engine) == source.recommended
        with engine.store.engine.connect() as conn:
            top = conn.execute(select(func.max(interactions.c.id))).scalar_one()
        new = engine.recs.record_interaction("carol", source.searched[0], "like")
        assert new["id"] > top  # ids continue after the restored ones (PostgreSQL sequences moved)
    finally:
        engine.close()


def test_round_trip_sqlite_postgres_sqlite_keeps_every_row_and_answer(
    source: Source, pg_url: str, tmp_path: Path, embedder: Any
) -> None:
    first = verify_backup(source.backup)
    assert first.source_backend == "sqlite" and first.schema_revision
    taken = _in_manifest(first)
    assert taken == _checksums(source.url)  # the manifest is the source, table by table
    assert all(taken[name][0] > 0 for name in FILLED), {n: taken[n][0] for n in FILLED}

    report = restore_backup(source.backup, pg_url, batch_size=50)
    assert report.target_backend == "postgresql" and all(c.ok for c in report.checks)
    second = create_backup(pg_url, tmp_path / "from-pg.tar.gz")
    assert second.source_backend == "postgresql"
    assert _in_manifest(second) == taken

    back = f"sqlite:///{tmp_path}/back.db"
    restore_backup(tmp_path / "from-pg.tar.gz", back)
    assert _checksums(back) == taken

    _answers_on(pg_url, tmp_path / "pg-data", embedder, source)
    _answers_on(back, tmp_path / "sqlite-data", embedder, source)


def _rewrite(src: Path, dest: Path, change: Callable[[str, bytes], bytes]) -> None:
    """Copy a backup's tar, passing every member's bytes through `change(name, data)`."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for member in tin.getmembers():
            data = change(member.name, tin.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))


def _tampered_title(src: Path, dest: Path) -> None:
    """One movie retitled, with the file's sha256 in the manifest updated to match: only the row
    checksum can tell."""
    new_files: dict[str, bytes] = {}

    def retitle(name: str, data: bytes) -> bytes:
        if name != "tables/items.jsonl.gz":
            return data
        rows = gzip.decompress(data).decode().splitlines()
        first = json.loads(rows[0])
        first["title"] = "Not " + first["title"]
        rows[0] = json.dumps(first, ensure_ascii=False)
        new_files[name] = gzip.compress(("\n".join(rows) + "\n").encode())
        return new_files[name]

    middle = dest.with_suffix(".mid")
    _rewrite(src, middle, retitle)

    def fix_manifest(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        import hashlib

        manifest = json.loads(data)
        for table in manifest["tables"]:
            if table["file"] in new_files:
                table["sha256"] = hashlib.sha256(new_files[table["file"]]).hexdigest()
        return json.dumps(manifest).encode()

    _rewrite(middle, dest, fix_manifest)


def _damaged(source: Source, tmp_path: Path) -> dict[str, Path]:
    raw = source.backup.read_bytes()
    out = {name: tmp_path / f"{name}.tar" for name in ("truncated", "flipped", "tampered", "not-a-backup")}
    out["truncated"].write_bytes(raw[: len(raw) // 2])
    with tarfile.open(source.backup) as tar:
        offset = tar.getmember("tables/items.jsonl.gz").offset_data + 5000
    flipped = bytearray(raw)
    flipped[offset] ^= 0xFF
    out["flipped"].write_bytes(bytes(flipped))
    _tampered_title(source.backup, out["tampered"])
    out["not-a-backup"].write_text("id,title\n1,Toy Story\n")
    return out


def _table_names(url: str) -> set[str]:
    engine = open_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def _public_tables(url: str) -> int:
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one()
    engine.dispose()
    return int(count)


def test_damaged_backups_are_refused_and_restore_nothing(source: Source, pg_url: str, tmp_path: Path) -> None:
    for kind, path in _damaged(source, tmp_path).items():
        with pytest.raises(BackupCorrupt) as err:
            verify_backup(path)
        if kind in ("flipped", "tampered"):
            assert [d["table"] for d in err.value.detail] == ["items"], err.value.message  # type: ignore[union-attr]
        target = tmp_path / f"{kind}.db"
        with pytest.raises(BackupCorrupt):
            restore_backup(path, f"sqlite:///{target}")
        assert not target.exists(), kind
        with pytest.raises(BackupCorrupt):
            restore_backup(path, pg_url)
        assert _public_tables(pg_url) == 0, kind


def test_occupied_target_is_refused_unless_forced(source: Source, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/occupied.db"
    store = open_store(url)
    store.set_meta("mine", "precious")
    store.close()
    before_tables, before = _table_names(url), _checksums(url)
    with pytest.raises(BackupTargetNotEmpty) as err:
        restore_backup(source.backup, url)
    assert isinstance(err.value, Conflict) and err.value.detail == {"metamedia_meta": 1}
    assert _table_names(url) == before_tables
    assert _checksums(url) == before

    report = restore_backup(source.backup, url, force=True)
    assert report.cleared == {"metamedia_meta": 1}
    store = open_store(url)
    assert store.get_meta("mine") is None
    store.close()
    assert _checksums(url) == _checksums(source.url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_backup_is_one_snapshot_while_writes_go_on(
    source: Source, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path}/live.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    restore_backup(source.backup, url)
    writer = open_engine(url)
    keys_before = _checksums(url)["api_keys"][0]
    written: list[str] = []

    def write_meanwhile(table: str, done: int, total: int) -> None:
        if table == "items" and not written:  # api_keys is read after items
            key, _secret = KeyStore(writer).create(["read"], name="written during the backup")
            written.append(key.id)

    manifest = create_backup(url, tmp_path / "live.tar", batch_size=50, progress=write_meanwhile)
    with writer.connect() as conn:
        assert conn.execute(select(func.count()).select_from(api_keys)).scalar_one() == keys_before + 1
    writer.dispose()
    assert written and _in_manifest(manifest) == _in_manifest(verify_backup(source.backup))


def test_cli_create_verify_restore_with_exit_codes(source: Source, tmp_path: Path) -> None:
    from metamedia.cli.main import app

    runner = CliRunner()
    file = tmp_path / "cli.tar"
    made = runner.invoke(app, ["backup", "create", str(file), "--database-url", source.url, "--json"])
    assert made.exit_code == 0, made.output
    tables = {t["name"]: t["rows"] for t in json.loads(made.stdout)["tables"]}
    assert tables["items"] == MOVIES and tables["rec_interactions"] > 0

    checked = runner.invoke(app, ["backup", "verify", str(file)])
    assert checked.exit_code == 0 and "ok" in checked.output, checked.output

    target = f"sqlite:///{tmp_path}/cli.db"
    restored = runner.invoke(app, ["backup", "restore", str(file), "--to", target, "--json"])
    assert restored.exit_code == 0, restored.output
    verified = {v["table"]: v["rows"] for v in json.loads(restored.stdout)["verified"]}
    assert verified == tables

    again = runner.invoke(app, ["backup", "restore", str(file), "--to", target])
    assert again.exit_code == BackupTargetNotEmpty.exit_code
    assert "already holds metamedia rows" in again.output
    forced = runner.invoke(app, ["backup", "restore", str(file), "--to", target, "--force"])
    assert forced.exit_code == 0, forced.output

    broken = tmp_path / "broken.tar"
    shutil.copyfile(file, broken)
    with open(broken, "r+b") as handle:
        handle.truncate(broken.stat().st_size // 3)
    for command in (["verify", str(broken)], ["restore", str(broken), "--to", f"sqlite:///{tmp_path}/x.db"]):
        result = runner.invoke(app, ["backup", *command])
        assert result.exit_code == BackupCorrupt.exit_code, result.output
        assert "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_text_postgresql_cannot_hold_is_refused_cleanly(tmp_path: Path, pg_url: str) -> None:
    """SQLite keeps a NUL character in text, PostgreSQL refuses it: a named error, no rows restored."""
    url = f"sqlite:///{tmp_path}/nul.db"
    store = open_store(url)
    store.write_items(
        [ItemWrite(None, {"title": "Nul\x00Title", "genres": [], "keywords": [], "source": "t"})]
    )
    store.close()
    create_backup(url, tmp_path / "nul.tar")
    with pytest.raises(BackupIncompatible, match="refused rows of table items"):
        restore_backup(tmp_path / "nul.tar", pg_url)
    assert all(rows == 0 for rows, _ in _checksums(pg_url).values())
    restore_backup(tmp_path / "nul.tar", f"sqlite:///{tmp_path}/back.db")
    assert _checksums(f"sqlite:///{tmp_path}/back.db") == _checksums(url)


_KINDS = ("integer", "float", "boolean", "text", "bytes", "json")
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_VALUES = {
    "integer": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(),  # NaN and ±infinity included
    "boolean": st.booleans(),
    "text": st.text(),
    "bytes": st.binary(max_size=64),
    "json": _JSON,
}


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({kind: st.none() | _VALUES[kind] for kind in _KINDS}))
def test_every_column_kind_round_trips_through_a_row_line(row: dict[str, Any]) -> None:
    kinds = [(kind, kind) for kind in _KINDS]
    entry = TableEntry("t", 1, "", [{"name": k, "type": k} for k in _KINDS], "tables/t.jsonl.gz")
    line = encode_row(kinds, row)
    assert "\n" not in line
    decoded = decode_row(kinds, line)
    before, after = RowChecksum(manifest_table(entry)), RowChecksum(manifest_table(entry))
    before.add(row)
    after.add(decoded)
    assert after.hexdigest == before.hexdigest
    assert decoded["bytes"] == row["bytes"] and decoded["text"] == row["text"]
