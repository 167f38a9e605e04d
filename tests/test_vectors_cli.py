"""`metamedia vectors ...` sub-app through typer's CliRunner, on a real data folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sqlalchemy
from typer.testing import CliRunner

from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.cli import app
from metamedia.vectors.schema import points as points_table
from metamedia.vectors.synthetic import clustered

runner = CliRunner()


def seed(data_dir: Path) -> None:
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{data_dir / 'metamedia.db'}"), data_dir)
    col = db.create_collection(CollectionConfig(name="media", dim=8, ef_construction=40))
    col.upsert(np.arange(300), clustered(300, 8, clusters=4), [{"n": i} for i in range(300)])
    col.delete(np.arange(10))
    db.close()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_commands_report_and_maintain_collections(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    listed = invoke("list", "--data-dir", str(data), "--json")
    assert listed.exit_code == 0
    assert [c["name"] for c in json.loads(listed.stdout)] == ["media"]
    assert "media\tdim=8\tcosine\tfloat32" in invoke("list", "--data-dir", str(data)).stdout

    described = json.loads(invoke("describe", "media", "--data-dir", str(data), "--json").stdout)
    assert described["count"] == 290 and described["tombstones"] == 10

    verified = invoke("verify", "--data-dir", str(data))
    assert verified.exit_code == 0 and "media: ok" in verified.stdout

    compacted = json.loads(invoke("compact", "media", "--data-dir", str(data), "--json").stdout)
    assert compacted["media"]["removed_labels"] == 10
    assert (
        json.loads(invoke("describe", "media", "--data-dir", str(data), "--json").stdout)["tombstones"] == 0
    )

    snap = json.loads(invoke("snapshot", "--data-dir", str(data), "--json").stdout)
    assert Path(snap["media"]).is_dir()

    assert invoke("backup", str(tmp_path / "bk"), "--data-dir", str(data)).exit_code == 0
    assert (tmp_path / "bk" / "manifest.json").is_file()
    engine = sqlalchemy.create_engine(f"sqlite:///{data / 'metamedia.db'}")
    with engine.begin() as conn:
        # Same ids and count (so opening does not notice), different vectors: only verify can tell.
        conn.execute(
            sqlalchemy.update(points_table)
            .where(points_table.c.point_id >= 50)
            .values(vector=np.full(8, 0.5, dtype="<f4").tobytes())
        )
    engine.dispose()
    broken = invoke("verify", "media", "--data-dir", str(data), "--json")
    assert broken.exit_code == 1 and json.loads(broken.stdout)["media"]["vector_mismatches"]
    assert "MISMATCH" in invoke("verify", "--data-dir", str(data)).stdout

    repaired = json.loads(invoke("repair", "media", "--data-dir", str(data), "--json").stdout)
    assert repaired["media"]["ok"] and repaired["media"]["index_count"] == 290
    assert invoke("verify", "--data-dir", str(data)).exit_code == 0

    restored = invoke("restore", str(tmp_path / "bk"), "--data-dir", str(data))
    assert restored.exit_code == 0 and "restored: media" in restored.stdout
    assert json.loads(invoke("describe", "media", "--data-dir", str(data), "--json").stdout)["count"] == 290


def test_errors_go_to_stderr_with_the_error_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    missing = invoke("describe", "nope", "--data-dir", str(data))
    assert missing.exit_code == 3  # NotFound
    assert "collection 'nope' does not exist" in missing.stderr and missing.stdout == ""
    corrupt_src = tmp_path / "not-a-backup"
    corrupt_src.mkdir()
    refused = invoke("restore", str(corrupt_src), "--data-dir", str(data))
    assert refused.exit_code == 2 and "not a readable vector backup" in refused.stderr
