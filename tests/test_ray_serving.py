"""Serving on a real local multi-node Ray cluster (issue 21, Done-when 1-5).

Real parts only: a Ray cluster of three nodes (tests/rayfixtures.py), a real PostgreSQL with
pgvector (pgserver), the real model (ONNX, in the QueryEmbedder deployment) and the first 4,803
items of the bundled demo catalog (the TMDB 5000 films) with their shipped text embeddings. The
tests run in order on one deployment: each step starts from the state the previous one left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from metamedia.embed.hybrid import combine, genre_block, meta_block, mood_block
from metamedia.settings import Settings
from tests.conftest import DEMO_CATALOG, TMDB_5000_FILMS, demo_catalog_slice
from tests.pgfixtures import PgServer
from tests.rayfixtures import HEAD_RESOURCE, SHARD_RESOURCE, RayTestCluster, ray_cluster  # noqa: F401

pytestmark = pytest.mark.slow

QUERIES = [
    "space adventure with aliens", "romantic comedy in new york", "gritty crime drama",
    "animated family film about toys", "world war two soldiers", "haunted house horror",
    "superhero saves the city", "heist with a clever twist", "coming of age summer story",
    "dystopian future rebellion", "courtroom drama about justice", "martial arts revenge",
    "musical about show business", "detective solving a murder", "survival in the wilderness",
    "time travel paradox", "sports underdog team", "political thriller conspiracy",
    "vampires at night", "road trip friendship", "pirates and treasure", "zombie apocalypse",
    "spy mission in europe", "biography of a musician", "disaster movie earthquake",
    "robots and artificial intelligence", "western gunfight", "high school prom",
    "submarine war", "fairy tale princess", "serial killer investigation", "dinosaurs",
    "boxing champion", "mafia family", "alien invasion of earth", "teen horror slasher",
    "christmas family comedy", "ocean shark attack", "hacker computer thriller",
    "medieval knights battle", "ghost story", "bank robbery gone wrong", "wedding comedy",
    "prison escape", "cold war spies", "epic fantasy quest", "dance competition",
    "car racing", "space station disaster", "kidnapping thriller",
]  # fmt: skip
FILTERS: list[dict[str, Any]] = [
    {"must": [{"field": "year", "range": {"gte": 1990, "lte": 1999}}]},
    {"must": [{"field": "genres", "in": ["Horror"]}]},
    {"must": [{"field": "year", "range": {"gte": 2010}}, {"field": "genres", "in": ["Animation"]}]},
    {"must_not": [{"field": "genres", "in": ["Drama", "Comedy"]}]},
]


@pytest.fixture(scope="module")
def catalog_db(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database holding the demo films, indexed on pgvector (the store of record)."""
    from metamedia.demo import prime_shipped_embeddings
    from metamedia.embed.bundle import bundle_path_for
    from metamedia.engine import Engine

    url = pg_server.create_database("mm_ray_serving")
    films = demo_catalog_slice(tmp_path_factory.mktemp("ray_src") / "films.jsonl", TMDB_5000_FILMS)
    settings = Settings(data_dir=tmp_path_factory.mktemp("ray_load"), database_url=url, vector_backend="pgvector")
    with Engine(settings) as engine:
        prime_shipped_embeddings(engine, bundle_path_for(DEMO_CATALOG))
        engine.ingest([films])
    yield url
    pg_server.drop_database("mm_ray_serving")


@pytest.fixture(scope="module")
def serving(ray_cluster: RayTestCluster, catalog_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """metamedia on the cluster: S=2 shards x R=2 replicas (one of each shard per worker node)."""
    from metamedia.distributed.control import Placement, RayServing

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ray_ingress"),
        database_url=catalog_db,
        vector_backend="pgvector",
        auth_disabled=True,
        host="127.0.0.1",
    )
    placement = Placement(
        shard_actor_options={"num_cpus": 0, "resources": {SHARD_RESOURCE: 0.01}},
        max_shard_replicas_per_node=1,
        ingress_actor_options={"num_cpus": 0, "resources": {HEAD_RESOURCE: 0.01}},
        embedder_actor_options={"num_cpus": 0, "resources": {HEAD_RESOURCE: 0.01}},
    )
    ray_serving = RayServing(settings, placement, ef_construction=100, timeout_s=900)
    ray_serving.deploy(shards=2, replicas=2)
    return ray_serving


@pytest.fixture(scope="module")
def http(ray_cluster: RayTestCluster, serving: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ray_cluster.http_url, timeout=120) as client:
        deadline = time.monotonic() + 300
        while client.get("/ready").status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail("the Ray ingress never became ready")
            time.sleep(0.5)
        yield client


def test_smoke_search(http: httpx.Client) -> None:
    r = http.get("/search", params={"q": "space adventure with aliens", "k": 10})
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 10
