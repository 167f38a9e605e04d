"""Prometheus /metrics and /ready reflecting index/store consistency."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.client import Forbidden, MetamediaClient
from metamedia.engine import Engine
from metamedia.settings import Settings

from .conftest import TMDB_5000, write_csv_slice


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, embedder
) -> Iterator[tuple[TestClient, Engine, dict[str, str]]]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("metrics")
    engine = Engine(Settings(data_dir=root / "data"), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 40)])
    store = KeyStore(engine.store.engine)
    keys = {"admin": store.create(["admin"])[1], "read": store.create(["read"])[1]}
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit=""))
    with TestClient(app) as client:
        yield client, engine, keys
    engine.close()


def value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_need_admin_and_count_routes_searches_and_events(setup) -> None:  # type: ignore[no-untyped-def]
    client, engine, keys = setup
    admin, reader = (
        MetamediaClient(api_key=keys["admin"], http=client),
        MetamediaClient(api_key=keys["read"], http=client),
    )
    with pytest.raises(Forbidden):
        reader.metrics()
    before = admin.metrics()
    for _ in range(3):
        reader.search("a heist gone wrong", k=3)
    reader.similar(engine.store.item_ids()[0], k=3)
    admin.create_item({"title": "Metrics Film"})
    after = admin.metrics()
    route = value(after, "metamedia_http_request_duration_seconds_count", route="/search", status="200")
    assert (
        route - value(before, "metamedia_http_request_duration_seconds_count", route="/search", status="200")
        == 3
    )
    assert (
        value(after, "metamedia_http_request_duration_seconds_count", route="/items/{item_id}/similar") >= 1
    )
    assert value(after, "metamedia_search_duration_seconds_count", kind="search") >= 3
    assert value(after, "metamedia_index_size") == engine.media.count() == engine.count()
    # The same query three times: the search result cache served at least two of them.
    hits = value(after, "metamedia_result_cache_lookups_total", result="hit")
    assert hits - value(before, "metamedia_result_cache_lookups_total", result="hit") >= 2
    assert value(after, "metamedia_learning_events_total", kind="item.created") == 1
    assert not re.search(r'route="/items/\d+', after)  # templates, not raw paths: bounded cardinality


def test_ready_reflects_index_store_agreement(setup) -> None:  # type: ignore[no-untyped-def]
    client, engine, keys = setup
    assert client.get("/ready").status_code == 200
    victim = engine.store.item_ids()[0]
    engine.media.delete([victim])  # the index loses an item the store still has
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503 and not_ready.json()["consistent"] is False
    admin = MetamediaClient(api_key=keys["admin"], http=client)
    assert admin.verify()["missing"] == [victim]
    assert admin.repair()["repaired"] is True
    assert client.get("/ready").status_code == 200 and admin.verify()["ok"] is True
