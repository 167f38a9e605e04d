"""The /memory HTTP routes and /admin/learn on a real engine, plus scopes with real keys and the scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.api.routes_memory import router
from metamedia.engine import Engine
from metamedia.errors import InvalidInput
from metamedia.memory.facade import MemoryFacade
from metamedia.memory.scheduler import start_learner_schedule, stop_learner_schedule
from metamedia.settings import Settings

from .conftest import MOVIELENS, TMDB_5000, write_csv_slice

EVENING = {"hour": 20, "day_of_week": 4, "device": "tv"}


def build_app(engine: Engine, api: Settings) -> FastAPI:
    app = create_app(engine=engine, settings=api)
    if not any(getattr(r, "path", "").startswith("/memory") for r in app.routes):
        app.include_router(router)
    return app


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("memory-api")
    eng = Engine(Settings(data_dir=root / "data"), embedder=embedder)
    eng.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 20)])
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    app = build_app(engine, Settings(auth_disabled=True, log_json=False, rate_limit=""))
    with TestClient(app) as client:
        yield client


def episode(**over: Any) -> dict[str, Any]:
    body = {
        "session_id": "s1", "task": "recommend films", "context": EVENING, "recommended": ["1", "2"],
        "predicted": 0.8, "actual": 0.9, "reward": 0.9, "success": True, "user_id": "ann",
        "item_id": "1", "item": {"title": "Avatar", "genres": ["Action", "Science Fiction"]},
    }  # fmt: skip
    return body | over


def test_strategies_store_search_outcome_evolve_and_history(http: TestClient) -> None:
    body = {
        "title": "Cosy weekend comedies",
        "description": "On weekend evenings recommend light comedies the whole family can watch.",
        "task_type": "recommendation",
        "tags": ["weekend", "evening"],
        "heuristics": ["prefer comedies under two hours"],
    }
    created = http.post("/memory/strategies", json=body)
    assert created.status_code == 201
    sid = created.json()["id"]
    assert http.post("/memory/strategies", json=body).status_code == 409

    found = http.get(
        "/memory/strategies/search", params={"q": "family comedy for the weekend", "k": 3}
    ).json()
    assert found[0]["strategy"]["id"] == sid
    assert all(0.0 <= m["confidence"] <= 1.0 for m in found)
    other_task = http.get("/memory/strategies/search", params={"q": "family comedy", "task": "search"}).json()
    assert sid not in [m["strategy"]["id"] for m in other_task]

    for success in (True, True, False):
        stats = http.post(
            f"/memory/strategies/{sid}/outcome", json={"success": success, "reward": 1.0 * success}
        )
    assert stats.json()["uses"] == 3 and stats.json()["successes"] == 2
    assert stats.json()["smoothed_success"] == pytest.approx(3 / 5)

    evolved = http.post(
        f"/memory/strategies/{sid}/evolve",
        json={
            "changes": {"heuristics": ["prefer comedies under 100 minutes"]},
            "reason": "long films dropped",
        },
    )
    assert evolved.status_code == 201 and evolved.json()["version"] == 2
    new_id = evolved.json()["id"]
    # The old version is kept but can no longer be evolved or found.
    again = http.post(f"/memory/strategies/{sid}/evolve", json={"changes": {"tags": []}, "reason": "x"})
    assert again.status_code == 409
    history = http.get(f"/memory/strategies/{new_id}/history").json()
    assert [s["id"] for s in history["lineage"]] == [sid, new_id]
    old_trail = [a["action"] for a in http.get(f"/memory/{sid}/history").json()]
    assert old_trail[0] == "created" and old_trail.count("outcome") == 3 and old_trail[-1] == "superseded"


def test_strategy_requests_out_of_bounds_are_rejected(http: TestClient) -> None:
    assert http.get("/memory/strategies/search", params={"q": "x", "k": 0}).status_code == 422
    assert http.get("/memory/strategies/search", params={"q": "x", "min_confidence": 2}).status_code == 422
    assert http.post("/memory/strategies", json={"title": "", "task_type": "x"}).status_code == 422
    missing = http.post("/memory/strategies/nope@v1/outcome", json={"success": True, "reward": 1})
    assert missing.status_code == 404 and "nope@v1" in missing.json()["error"]
    bad_change = http.post(
        "/memory/strategies/diversity@v1/evolve", json={"changes": {"family_id": "x"}, "reason": "r"}
    )
    assert bad_change.status_code == 422
    assert http.get("/memory/no-such-memory/history").status_code == 404


def test_episodes_filters_and_failure_analysis(http: TestClient) -> None:
    ok = http.post("/memory/episodes", json=episode())
    assert ok.status_code == 201 and ok.json()["success"] is True
    failed = http.post(
        "/memory/episodes",
        json=episode(
            action="skip", actual=0.0, reward=0.0, success=False, item_id="7", critique="too scary for a weeknight",
            item={"title": "The Wolfman", "genres": ["Drama", "Horror", "Thriller"]},
            factors={"genre_match": 0.9, "rating_alignment": 0.2},
        ),
    )  # fmt: skip
    assert failed.status_code == 201
    fid = failed.json()["id"]
    assert failed.json()["caller_critique"] == "too scary for a weeknight"
    contradicting = http.post("/memory/episodes", json=episode(actual=0.1, reward=0.1, success=True))
    assert contradicting.status_code == 422

    q = {"q": "horror film skipped in the evening"}
    failures = http.get("/memory/episodes/search", params=q | {"only": "failures"}).json()
    assert failures and all(not m["episode"]["success"] for m in failures)
    successes = http.get("/memory/episodes/search", params=q | {"only": "successes"}).json()
    assert successes and all(m["episode"]["success"] for m in successes)
    rich = http.get("/memory/episodes/search", params=q | {"min_reward": 0.5}).json()
    assert rich and all(m["episode"]["reward"] >= 0.5 for m in rich)
    future = http.get("/memory/episodes/search", params=q | {"since": "2999-01-01T00:00:00"}).json()
    assert future == []
    assert http.get("/memory/episodes/search", params=q | {"since": "yesterday"}).status_code == 422

    analysis = http.post(f"/memory/episodes/{fid}/analyze").json()
    assert analysis["failed"] is True and "genre_match" in analysis["over_predicted"]
    assert "genre_match:Horror" in analysis["failure_keys"]
    assert "The Wolfman" in analysis["critique"]
    trail = http.get(f"/memory/{fid}/history").json()
    assert {"created", "critique"} <= {a["action"] for a in trail}
    assert http.post("/memory/episodes/nope/analyze").status_code == 404


def test_learning_creates_skills_keeps_causal_effects_and_is_announced(
    http: TestClient, engine: Engine
) -> None:
    facade = MemoryFacade(engine)
    ml = facade.learn(movielens=MOVIELENS, max_interactions=4000)
    assert ml["causal_source"] == "movielens" and ml["interactions"] == 4000
    effects = http.get("/memory/causal/effects", params={"user_id": "1", "top": 3}).json()
    population = effects["population"]
    assert 1 <= len(population) <= 3
    assert [abs(e["effect"]) for e in population] == sorted(
        (abs(e["effect"]) for e in population), reverse=True
    )
    assert effects["user"]["personalised"] is True
    unknown_user = http.get("/memory/causal/effects", params={"user_id": "no-such-user"}).json()["user"]
    assert unknown_user["personalised"] is False and all(
        e["deviation"] == 0.0 for e in unknown_user["effects"]
    )

    paths = http.get("/memory/causal/paths", params={"outcome": "completion", "max_depth": 2}).json()
    assert paths and all(p["path"].endswith("outcome:completion") for p in paths)
    causes = http.get("/memory/causal/causes", params={"event": "outcome", "k": 2}).json()
    assert len(causes) == 2 and causes[0]["strength"] >= causes[1]["strength"]
    assert http.get("/memory/causal/paths", params={"outcome": "nowhere"}).status_code == 404

    for n in range(3):
        http.post(
            "/memory/episodes", json=episode(session_id=f"skill{n}", task="pick an evening film for two")
        )
    heard: list[tuple[str, dict[str, Any]]] = []
    engine.listeners.append(lambda kind, data: heard.append((kind, data)))
    run = http.post("/admin/learn")
    assert run.status_code == 200
    report = run.json()
    assert report["skills_created"] >= 1 and report["causal_source"] is None
    # Too few logged episodes to re-estimate: the MovieLens effects stay in force.
    after = http.get("/memory/causal/effects").json()["population"]
    assert {e["feature"] for e in after} >= {e["feature"] for e in population}
    skills = http.get("/memory/skills/search", params={"task": "an evening film for two people"}).json()
    assert (
        skills[0]["skill"]["task"] == "pick an evening film for two"
        and skills[0]["skill"]["success_rate"] == 1.0
    )
    assert [k for k, _ in heard] == ["learner_run"] and heard[0][1]["run_id"] == report["run_id"]
    runs = http.get("/memory/learner/runs").json()
    assert runs[0]["run_id"] == report["run_id"] and runs[1]["run_id"] == ml["run_id"]


def test_scopes_with_real_keys(engine: Engine) -> None:
    store = KeyStore(engine.store.engine)
    keys = {name: store.create([name], name=f"memory-{name}")[1] for name in ("read", "write", "admin")}
    app = build_app(engine, Settings(log_json=False, rate_limit=""))
    with TestClient(app) as client:

        def call(method: str, path: str, key: str | None, **kw: Any) -> int:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return client.request(method, path, headers=headers, **kw).status_code

        search = "/memory/strategies/search?q=genre"
        body = {"title": "Scoped strategy", "task_type": "recommendation"}
        assert call("GET", search, None) == 401
        assert call("GET", search, keys["read"]) == 200
        assert call("GET", search, keys["write"]) == 200  # write includes read
        assert call("POST", "/memory/strategies", keys["read"], json=body) == 403
        assert call("POST", "/memory/strategies", keys["write"], json=body) == 201
        assert call("POST", "/admin/learn", keys["write"]) == 403
        assert call("GET", "/memory/learner/runs", keys["admin"]) == 200
        assert call("POST", "/admin/learn", keys["admin"]) == 200


def test_scheduler_runs_the_learner_until_stopped(engine: Engine) -> None:
    assert Settings.from_env({}).learn_interval == 0.0
    assert Settings.from_env({"METAMEDIA_LEARN_INTERVAL": "3600"}).learn_interval == 3600.0
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(InvalidInput):
            Settings.from_env({"METAMEDIA_LEARN_INTERVAL": bad})
    assert start_learner_schedule(engine, interval=0) is None
    before = len(MemoryFacade(engine).learner_runs(limit=100))
    schedule = start_learner_schedule(engine, interval=0.05)
    assert schedule is not None
    deadline = time.monotonic() + 120
    while not schedule.runs and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_learner_schedule(schedule)
    assert schedule.runs and schedule.failures == 0
    assert schedule.thread is not None and not schedule.thread.is_alive()
    assert len(MemoryFacade(engine).learner_runs(limit=100)) >= before + 1
