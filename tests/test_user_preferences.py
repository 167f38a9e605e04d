"""Routes the web app added: stated preferences (blocked genres, runtime), history with undo,
"because you liked" recommendations (similar_to), /me and the user list; real engine and keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.engine import Engine
from metamedia.settings import Settings
from tests.browser.conftest import demo_slice


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    base: Path = tmp_path_factory.mktemp("prefs-api")
    engine = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    engine.ingest([demo_slice(base / "slice.jsonl", 120)])
    keys = KeyStore(engine.store.engine)
    _, alice = keys.create(["read", "write"], user_id="alice", name="alice")
    _, admin = keys.create(["admin"], name="ops")
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit=""))
    with TestClient(app) as client:
        yield {"client": client, "engine": engine, "alice": alice, "admin": admin}
    engine.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def like(client: TestClient, key: str, user: str, item: int, n: str) -> dict[str, Any]:
    body = {"item_id": item, "kind": "like", "idempotency_key": n}
    r = client.post(f"/users/{user}/interactions", json=body, headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def genres_of(engine: Engine, ids: list[int]) -> set[str]:
    return {g for i in ids for g in engine.get_item(i).genres}


def test_blocked_genres_and_runtime_limit_shape_recommendations(api: dict[str, Any]) -> None:
    client, engine, key, user = api["client"], api["engine"], api["admin"], "bob"
    dramas = [r["id"] for r in engine.search("drama", 5, genres=["Drama"])["results"]]
    for i, item in enumerate(dramas[:3]):
        like(client, key, user, item, f"b-{i}")
    before = client.get(f"/users/{user}/recommendations?k=20&algorithm=content", headers=auth(key)).json()
    assert "Drama" in genres_of(engine, [r["id"] for r in before["results"]])

    r = client.put(f"/users/{user}/preferences", json={"blocked_genres": ["drama"], "max_runtime": 130},
                   headers=auth(key))  # fmt: skip
    assert r.status_code == 200, r.text
    prefs = r.json()
    assert [b["genre"] for b in prefs["blocked_genres"]] == ["Drama"] and prefs["blocked_genres"][0][
        "source"
    ] == "user"
    assert prefs["max_runtime"]["minutes"] == 130
    for algorithm in ("content", "trending", "auto", "popularity"):
        after = client.get(
            f"/users/{user}/recommendations?k=20&algorithm={algorithm}", headers=auth(key)
        ).json()
        ids = [r["id"] for r in after["results"]]
        assert len(ids) == 20, algorithm  # rows stay full: blocked titles leave the candidate pool
        assert "Drama" not in genres_of(engine, ids), algorithm
        assert all((engine.get_item(i).runtime or 0) <= 130 for i in ids), algorithm

    cleared = client.put(f"/users/{user}/preferences", json={"blocked_genres": [], "clear_max_runtime": True},
                         headers=auth(key)).json()  # fmt: skip
    assert cleared["blocked_genres"] == [] and cleared["max_runtime"] is None
    again = client.get(f"/users/{user}/recommendations?k=20&algorithm=content", headers=auth(key)).json()
    assert "Drama" in genres_of(engine, [r["id"] for r in again["results"]])


def test_bad_preferences_are_422_and_change_nothing(api: dict[str, Any]) -> None:
    client, key = api["client"], api["admin"]
    client.put("/users/carol/preferences", json={"blocked_genres": ["Horror"]}, headers=auth(key))
    for body in ({"blocked_genres": ["Horror", "Not A Genre"]}, {"max_runtime": 0}, {"nope": 1},
                 {"blocked_genres": ["Horror"] * 31}):  # fmt: skip
        r = client.put("/users/carol/preferences", json=body, headers=auth(key))
        assert r.status_code == 422 and r.json()["error"], body
    prefs = client.get("/users/carol/preferences", headers=auth(key)).json()
    assert [b["genre"] for b in prefs["blocked_genres"]] == ["Horror"] and prefs["max_runtime"] is None


def test_history_with_undo_replays_the_profile(api: dict[str, Any]) -> None:
    client, engine, key = api["client"], api["engine"], api["alice"]
    comedy = engine.search("comedy", 1, genres=["Comedy"])["results"][0]["id"]
    horror = engine.search("horror", 1, genres=["Horror"])["results"][0]["id"]
    like(client, key, "alice", comedy, "u-1")
    mistake = like(client, key, "alice", horror, "u-2")
    listed = client.get("/users/alice/interactions", headers=auth(key)).json()["interactions"]
    assert [r["item_id"] for r in listed[:2]] == [horror, comedy] and listed[0]["title"]
    top = {g["genre"] for g in client.get("/users/alice/profile", headers=auth(key)).json()["top_genres"]}
    assert "Horror" in top

    r = client.delete(f"/users/alice/interactions/{mistake['id']}", headers=auth(key))
    assert r.status_code == 200 and r.json()["undone"]["item_id"] == horror
    profile = client.get("/users/alice/profile", headers=auth(key)).json()
    assert profile["counts"] == {"like": 1}
    assert "Horror" not in {g["genre"] for g in profile["top_genres"]} - set(engine.get_item(comedy).genres)
    assert client.delete(f"/users/alice/interactions/{mistake['id']}", headers=auth(key)).status_code == 404
    # Another user's interaction cannot be undone through alice's key, nor listed.
    other = like(client, api["admin"], "dave", comedy, "d-1")
    assert client.delete(f"/users/dave/interactions/{other['id']}", headers=auth(key)).status_code == 403
    assert client.delete(f"/users/alice/interactions/{other['id']}", headers=auth(key)).status_code == 404
    assert client.get("/users/dave/interactions", headers=auth(key)).status_code == 403


def test_similar_to_recommends_items_like_the_seed(api: dict[str, Any]) -> None:
    client, engine, key = api["client"], api["engine"], api["admin"]
    seed = engine.search("space", 1)["results"][0]["id"]
    like(client, key, "erin", seed, "e-1")
    body = client.get(f"/users/erin/recommendations?k=8&algorithm=content&similar_to={seed}",
                      headers=auth(key)).json()  # fmt: skip
    ids = [r["id"] for r in body["results"]]
    similar = {r["id"] for r in engine.similar(seed, 20)["results"]}
    assert seed not in ids and len(set(ids) & similar) >= 5
    mood = client.get("/users/erin/recommendations?k=5&algorithm=hybrid&query=feel-good", headers=auth(key))
    assert mood.status_code == 200 and len(mood.json()["results"]) == 5  # with or without fitted CF models
    assert (
        client.get("/users/erin/recommendations?similar_to=999999999", headers=auth(key)).status_code == 404
    )


def test_me_and_user_list(api: dict[str, Any]) -> None:
    client = api["client"]
    me = client.get("/me", headers=auth(api["alice"])).json()
    assert me["auth"] is True and me["user_id"] == "alice" and "admin" not in me["scopes"]
    assert client.get("/me").status_code == 401
    assert client.get("/users", headers=auth(api["alice"])).status_code == 403
    users = client.get("/users", headers=auth(api["admin"])).json()["users"]
    assert users and all(u["interactions"] >= 0 for u in users)
    counts = [u["interactions"] for u in users]
    assert counts == sorted(counts, reverse=True)
