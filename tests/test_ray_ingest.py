"""`metamedia ingest --ray` on a real local multi-node Ray cluster (issue 21, done-when 6).

A head node (no CPUs: it only runs the driver) and two worker nodes of one CPU each
(`ray.cluster_utils.Cluster`), the real all-MiniLM-L6-v2 on every worker, a real PostgreSQL as the store
of record, and a real slice of TMDB 5000 from tests/data. The reference is the local ingest of the same
slice into SQLite + faiss. Worker nodes are killed while the Ray run is embedding (one of two, then the
last one, then a new node joins): the run must finish (Ray restarts the lost actors and retries their
batches), store every item once and hold the same vectors as the local ingest. A `metamedia ingest --ray`
process killed partway resumes, in the next run, with only what is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text

from metamedia.embed.hybrid import item_text, text_hash
from metamedia.engine import Engine
from metamedia.errors import BackendUnavailable
from metamedia.ingest.ray_ingest import RayIngestOptions, embed_on_ray
from metamedia.ingest.run import ingest_files
from metamedia.settings import Settings
from metamedia.store.factory import open_store
from metamedia.store.schema import embedding_cache
from tests.conftest import TMDB_5000, write_csv_slice

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ITEMS = 60
BATCH = 8
# Half a CPU per actor: both actors fit on one worker node, so the actor of a lost node restarts on the other.
OPTIONS = RayIngestOptions(workers=2, cpus_per_worker=0.5, batch_size=BATCH)
WAIT_S = 300.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Any, list[Any]]]:
    """Head (driver only) + 2 worker nodes of 1 CPU, as separate raylets on this machine."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [head.add_node(num_cpus=1, resources={"embed_node": 1}) for _ in range(2)]
    head.wait_for_nodes(timeout=WAIT_S)
    ray.init(address=head.address, logging_level="WARNING", log_to_driver=False)
    try:
        yield head, workers
    finally:
        ray.shutdown()
        head.shutdown()


@pytest.fixture(scope="module")
def catalog_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv_slice(TMDB_5000, tmp_path_factory.mktemp("ray_slice") / "tmdb.csv", ITEMS)


@pytest.fixture(scope="module")
def local(
    tmp_path_factory: pytest.TempPathFactory,
    catalog_slice: Path,
    one_thread_embedder: Any,
) -> Iterator[Engine]:
    """The reference: the same slice ingested locally into SQLite + faiss."""
    eng = Engine(Settings(data_dir=tmp_path_factory.mktemp("local")), embedder=one_thread_embedder)
    eng.ingest([catalog_slice])
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def pg_engine(
    tmp_path_factory: pytest.TempPathFactory, pg_server: Any, one_thread_embedder: Any
) -> Iterator[Engine]:
    url = pg_server.create_database("mm_ray_ingest")
    eng = Engine(
        Settings(data_dir=tmp_path_factory.mktemp("ray"), database_url=url), embedder=one_thread_embedder
    )
    yield eng
    eng.close()
    pg_server.drop_database("mm_ray_ingest")


def stored_vectors(eng: Engine) -> int:
    with eng.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(embedding_cache)).scalar_one())


def actor_nodes() -> set[str]:
    """Node ids of the Ray Data map actors that are alive now (from the GCS actor table)."""
    import ray

    actors = ray._private.state.actors()  # the GCS table, no dashboard needed
    return {
        a["Address"]["NodeID"]
        for a in actors.values()
        if a["State"] == "ALIVE" and "MapWorker" in a["ActorClassName"]
    }


def by_tmdb(eng: Engine) -> dict[int, Any]:
    return {it.tmdb_id: it for it in eng.store.iter_items()}


def same_as_local(local: Engine, eng: Engine) -> None:
    """Items, text vectors and media-index vectors equal to the local ingest's, each item once."""
    want, got = by_tmdb(local), by_tmdb(eng)
    assert eng.count() == local.count() == len(got) == ITEMS
    assert sorted(got) == sorted(want)
    skip = {"id", "created_at", "updated_at"}
    for tmdb_id, item in want.items():
        a = {k: v for k, v in item.to_dict().items() if k not in skip}
        b = {k: v for k, v in got[tmdb_id].to_dict().items() if k not in skip}
        assert a == b, tmdb_id
    # the Ray run's vectors read straight from its store (text_vectors would embed what is missing)
    name = local.embedder.name
    hashes = [text_hash(name, item_text(got[t])) for t in want]
    ray_cached = eng.store.get_embeddings(hashes)
    assert len(ray_cached) == len(set(hashes))
    ray_text = np.stack([ray_cached[h] for h in hashes])
    local_text = local.text_vectors(list(want.values()))
    assert float(np.sum(local_text * ray_text, axis=1).min()) >= 0.9999
    local_index = local.media.get_vectors([it.id for it in want.values()])
    ray_index = eng.media.get_vectors([got[t].id for t in want])
    norms = np.linalg.norm(local_index, axis=1) * np.linalg.norm(ray_index, axis=1)
    assert float((np.sum(local_index * ray_index, axis=1) / norms).min()) >= 0.9999
    check = eng.check_index()
    assert check["ok"] and check["indexed"] == ITEMS, check


def forget_vectors(eng: Engine, items: list[Any]) -> None:
    """The state a stopped run leaves: these items have no vector in the store nor in the media index."""
    with eng.db.begin() as conn:
        conn.execute(
            text("DELETE FROM embedding_cache WHERE content_hash = ANY(:h)"),
            {"h": [text_hash(eng.embedder.name, item_text(it)) for it in items]},
        )
    eng.media.delete([it.id for it in items])


def ingest_in_thread(eng: Engine, catalog: Path) -> tuple[threading.Thread, dict[str, Any]]:
    """`ingest_ray` on a thread (the test thread kills and adds nodes: Ray starts nodes from the main thread)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["reports"] = eng.ingest_ray([catalog], OPTIONS)
        except BaseException as exc:  # handed to the test thread, which fails with it
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def kill_node_mid_run(
    head: Any, workers: list[Any], eng: Engine, run: threading.Thread, *, after: int
) -> int:
    """Once `after` vectors are stored and every actor is up, kill (no graceful exit) a worker node that
    holds an actor. Returns how many vectors were stored at that moment."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and run.is_alive():
        written = stored_vectors(eng)
        nodes = actor_nodes()
        victim = next((w for w in workers if w.node_id in nodes), None)
        if written >= after and victim is not None and len(nodes) == len(workers):
            head.remove_node(victim, allow_graceful=False)
            workers.remove(victim)
            return written
        time.sleep(0.2)  # polling the store while the run progresses, bounded by the deadline
    raise AssertionError("no worker node was removed while the run was embedding")


def finished(run: threading.Thread, out: dict[str, Any]) -> tuple[Any, Any]:
    run.join(timeout=WAIT_S)
    assert not run.is_alive(), "the Ray ingest did not finish"
    if "error" in out:
        raise out["error"]
    reports: tuple[Any, Any] = out["reports"]
    return reports


def test_ray_ingest_survives_worker_nodes_lost_mid_run(
    cluster: tuple[Any, list[Any]], local: Engine, pg_engine: Engine, catalog_slice: Path
) -> None:
    """One of two worker nodes dies: its actor restarts on the other and its batch is retried. Then the
    last worker node dies: the run waits until a new node joins, and finishes there."""
    head, workers = cluster
    run, out = ingest_in_thread(pg_engine, catalog_slice)
    first = kill_node_mid_run(head, workers, pg_engine, run, after=BATCH)
    assert len(workers) == 1
    second = kill_node_mid_run(head, workers, pg_engine, run, after=first + BATCH)
    assert not workers and run.is_alive()  # no node can run the actors now
    workers.append(head.add_node(num_cpus=1, resources={"embed_node": 1}))
    report, ray_report = finished(run, out)

    assert first < second < ITEMS, "the nodes were removed only after every vector was written"
    assert report.inserted == ITEMS
    assert ray_report.pending == ITEMS
    # every item came back once; a batch a lost actor had begun may have been written before it died
    assert ray_report.embedded + ray_report.already_stored == ITEMS and ray_report.not_found == 0
    assert stored_vectors(pg_engine) == ITEMS
    same_as_local(local, pg_engine)


def test_a_run_whose_driver_is_killed_resumes_with_only_what_is_missing(
    cluster: tuple[Any, list[Any]], local: Engine, pg_engine: Engine, catalog_slice: Path, tmp_path: Path
) -> None:
    """`metamedia ingest --ray` in its own process, killed (SIGKILL) once a batch is stored; the next run
    sends only the items still without a vector and ends equal to the local ingest."""
    head, _workers = cluster
    redo = list(pg_engine.store.iter_items())  # every vector to make again
    forget_vectors(pg_engine, redo)
    kept = 0
    cmd = [sys.executable, "-m", "metamedia.cli", "--data-dir", str(tmp_path), "--database-url",
           pg_engine.settings.database_url, "ingest", "--ray", "--ray-address", head.address,
           "--ray-workers", "2", "--ray-cpus-per-worker", "0.5", "--ray-batch-size", str(BATCH),
           "--json", str(catalog_slice)]  # fmt: skip
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + WAIT_S
        while (
            stored_vectors(pg_engine) < kept + BATCH and driver.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.2)  # polling the store while the run progresses, bounded by the deadline
        assert driver.poll() is None, "the run ended before it could be killed"
    finally:
        driver.kill()
        driver.wait(timeout=60)
    assert ITEMS - stored_vectors(pg_engine) > 0  # killed partway

    report, ray_report = pg_engine.ingest_ray([catalog_slice], OPTIONS)

    assert report.inserted == report.updated == 0 and report.unchanged == ITEMS
    # only what the killed run had not stored is sent (its last batch may still have landed after the kill)
    assert 0 < ray_report.pending <= len(redo) - BATCH
    assert ray_report.embedded + ray_report.already_stored == ray_report.pending
    same_as_local(local, pg_engine)

    # Nothing left to do: the next run sends nothing to Ray and changes nothing.
    _report, again = pg_engine.ingest_ray([catalog_slice], OPTIONS)
    assert again.pending == again.embedded == 0
    assert stored_vectors(pg_engine) == ITEMS


def test_cli_ingest_ray_on_sqlite_and_bad_options(
    cluster: tuple[Any, list[Any]], local: Engine, tmp_path: Path, catalog_slice: Path
) -> None:
    """`metamedia ingest --ray` joins the connected cluster; SQLite serves when every worker is on
    this machine. Bad options exit with an error before the store is opened."""
    from typer.testing import CliRunner

    from metamedia.cli.main import app

    runner = CliRunner()
    bad_dir = tmp_path / "bad"
    bad = runner.invoke(
        app, ["--data-dir", str(bad_dir), "ingest", "--ray", "--ray-batch-size", "0", str(catalog_slice)]
    )
    assert bad.exit_code != 0 and "batch size" in bad.output
    assert not bad_dir.exists()

    small = write_csv_slice(TMDB_5000, tmp_path / "small.csv", 16)
    data_dir = tmp_path / "lite"
    args = [
        "--data-dir",
        str(data_dir),
        "ingest",
        "--ray",
        "--ray-workers",
        "1",
        "--ray-batch-size",
        "8",
        "--json",
    ]
    out = runner.invoke(app, [*args, str(small)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["inserted"] == 16 and report["ray"]["embedded"] == report["ray"]["pending"] == 16
    with Engine(Settings(data_dir=data_dir), embedder=local.embedder) as eng:
        assert eng.check_index()["ok"] and eng.count() == 16
        want = by_tmdb(local)
        got = by_tmdb(eng)
        a = local.media.get_vectors([want[t].id for t in got])
        b = eng.media.get_vectors([it.id for it in got.values()])
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert float(cos.min()) >= 0.9999


def test_workers_that_cannot_see_a_sqlite_store_fail_the_run_clearly(
    cluster: tuple[Any, list[Any]], tmp_path: Path
) -> None:
    """A SQLite file the workers cannot open (another machine's disk) stops the run with the reason,
    instead of each worker creating an empty store of its own and embedding nothing."""
    store = open_store(f"sqlite:///{tmp_path / 'driver.db'}")
    try:
        ingest_files(
            store, [write_csv_slice(TMDB_5000, tmp_path / "few.csv", 8)], model_name="all-MiniLM-L6-v2"
        )
        elsewhere = tmp_path / "elsewhere.db"
        with pytest.raises(BackendUnavailable, match="not on this Ray node") as caught:
            embed_on_ray(store, f"sqlite:///{elsewhere}", model_name="all-MiniLM-L6-v2", options=OPTIONS)
        assert "run the ingest again to resume" in str(caught.value)
        assert not elsewhere.exists()
        assert len(store.ids_without_embedding()) == 8
    finally:
        store.close()
