"""/users/{id}/interactions, /recommendations and /profile through the real app, keys and engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.api.routes_users import router
from metamedia.engine import Engine
from metamedia.settings import Settings
from tests.conftest import TMDB_5000, write_csv_slice


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    base: Path = tmp_path_factory.mktemp("users-api")
    engine = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, base / "slice.csv", 40)])
    keys = KeyStore(engine.store.engine)
    _, alice = keys.create(["read", "write"], user_id="alice", name="alice")
    _, service = keys.create(["read", "write"], name="backend")
    _, reader = keys.create(["read"], name="reader")
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit=""))
    app.include_router(router)
    with TestClient(app) as client:
        yield {"client": client, "engine": engine, "alice": alice, "service": service, "reader": reader}
    engine.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_post_interaction_then_profile_and_recommendations(api: dict[str, Any]) -> None:
    client, engine = api["client"], api["engine"]
    item = engine.store.item_ids()[0]
    body = {"item_id": item, "kind": "watch", "completion": 0.9, "idempotency_key": "w-1",
            "context": {"hour": 21, "device": "tv"}}  # fmt: skip
    first = client.post("/users/alice/interactions", json=body, headers=auth(api["alice"]))
    assert first.status_code == 201 and first.json()["duplicate"] is False
    retry = client.post("/users/alice/interactions", json=body, headers=auth(api["alice"]))
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert retry.json()["id"] == first.json()["id"]
    profile = client.get("/users/alice/profile", headers=auth(api["alice"])).json()
    assert profile["counts"] == {"watch": 1}
    assert {g["genre"] for g in profile["top_genres"]} == set(engine.get_item(item).genres)
    recs = client.get(
        "/users/alice/recommendations", params={"k": 5, "algorithm": "content", "hour": 21},
        headers=auth(api["alice"]),
    )  # fmt: skip
    assert recs.status_code == 200
    rows = recs.json()["results"]
    assert len(rows) == 5 and item not in {r["id"] for r in rows} and all(r["reasons"] for r in rows)


def test_bound_key_cannot_touch_another_user(api: dict[str, Any]) -> None:
    client = api["client"]
    item = api["engine"].store.item_ids()[1]
    assert client.get("/users/bob/profile", headers=auth(api["alice"])).status_code == 403
    denied = client.post(
        "/users/bob/interactions", json={"item_id": item, "kind": "like"}, headers=auth(api["alice"])
    )
    assert denied.status_code == 403
    assert client.get("/users/bob/recommendations", headers=auth(api["alice"])).status_code == 403
    assert client.post(
        "/users/bob/interactions", json={"item_id": item, "kind": "like"}, headers=auth(api["reader"])
    ).status_code == 403  # fmt: skip
    assert client.get("/users/bob/profile").status_code == 401
    made = client.post(
        "/users/bob/interactions", json={"item_id": item, "kind": "like"}, headers=auth(api["service"])
    )
    assert made.status_code == 201


def test_errors_map_to_statuses(api: dict[str, Any]) -> None:
    client, key = api["client"], auth(api["service"])
    item = api["engine"].store.item_ids()[2]
    assert client.get("/users/nobody/profile", headers=key).status_code == 404
    assert (
        client.post(
            "/users/carol/interactions", json={"item_id": 10**9, "kind": "like"}, headers=key
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/users/carol/interactions", json={"item_id": item, "kind": "nap"}, headers=key
        ).status_code
        == 422
    )
    bad_rating = {"item_id": item, "kind": "rating", "value": 0.1}
    assert client.post("/users/carol/interactions", json=bad_rating, headers=key).status_code == 422
    assert client.get("/users/carol/recommendations", params={"k": 0}, headers=key).status_code == 422
    cold = client.get("/users/carol/recommendations", params={"k": 3}, headers=key).json()
    assert cold["cold_start"] and cold["decision_id"] and len(cold["results"]) == 3
