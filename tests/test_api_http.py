"""The HTTP API in-process (ASGI) on the real TMDB 5000 catalog: shapes, errors, status codes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.settings import Settings


@pytest.fixture(scope="module")
def client(catalog_engine):  # type: ignore[no-untyped-def]
    # keys and scopes have their own tests (test_api_security); here the catalog behaviour is under test
    app = create_app(engine=catalog_engine, settings=Settings(auth_disabled=True, rate_limit=""))
    with TestClient(app) as c:
        yield c


def test_search_shape(client: TestClient) -> None:
    r = client.get("/search", params={"q": "space adventure with aliens", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"query", "results", "took_ms"}
    assert len(body["results"]) == 5
    first = body["results"][0]
    for key in (
        "id",
        "title",
        "year",
        "genres",
        "tmdb_id",
        "imdb_id",
        "movielens_id",
        "score",
        "reasons",
        "overview",
        "poster_path",
    ):
        assert key in first
    assert sum("Science Fiction" in x["genres"] for x in body["results"]) >= 3


def test_search_filters_via_query_string(client: TestClient) -> None:
    r = client.get(
        "/search", params=[("q", "war"), ("genre", "War"), ("year_min", 1990), ("year_max", 2005), ("k", 8)]
    )
    assert r.status_code == 200
    for x in r.json()["results"]:
        assert "War" in x["genres"] and 1990 <= x["year"] <= 2005


@pytest.mark.parametrize(
    "params",
    [
        {"q": "space", "k": 0},
        {"q": "space", "k": 1001},
        {"q": "space", "year_min": "nineties"},
        {"q": "space", "year_min": 2010, "year_max": 2000},
        {"q": "space", "genre": "nope"},
        {"q": "space", "type": "podcast"},
        {"q": "space", "rating_min": "NaN"},
        {"q": "x" * 600},
        {"q": ""},
    ],
)
def test_bad_input_is_422_with_json_error(client: TestClient, params: dict) -> None:
    r = client.get("/search", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "detail" in body


def test_items_and_similar(client: TestClient, catalog_engine) -> None:  # type: ignore[no-untyped-def]
    item_id = catalog_engine.store.find_ids("tmdb_id", [19995])[19995]
    r = client.get(f"/items/{item_id}")
    assert r.status_code == 200 and r.json()["title"] == "Avatar"
    r = client.get(f"/items/{item_id}/similar", params={"k": 5})
    assert r.status_code == 200
    assert len(r.json()["results"]) == 5
    assert all(x["id"] != item_id for x in r.json()["results"])


def test_unknown_item_is_404_json(client: TestClient) -> None:
    for path in ("/items/999999999", "/items/999999999/similar"):
        r = client.get(path)
        assert r.status_code == 404
        assert "no item" in r.json()["error"]
    assert client.get("/items/abc").status_code == 422


def test_health_stats_docs_and_page(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["items"] == health["indexed"] > 4000
    stats = client.get("/stats").json()
    assert stats["items"] > 4000 and stats["backend"] == "sqlite"
    assert client.get("/openapi.json").json()["paths"]["/search"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
