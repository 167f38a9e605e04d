"""Each finding of the issue-17 attack, reproduced against a real server (auth on unless named).

These are the regression tests for the High and Medium findings and for every instance of the low
classes; the route x principal matrix and the hostile-body sweep live beside them.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from metamedia.api.keys import KeyStore

from .conftest import Server, assert_json_error, fingerprint
from .mcpraw import McpSession, tool_failed, tool_result

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def deep(levels: int, leaf: object = 1) -> object:
    value: object = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def episode(user: str, **extra: object) -> dict[str, object]:
    return {
        "task": "recommend a calm film", "predicted": 0.8, "actual": 0.9, "reward": 1.0, "success": True,
        "user_id": user, **extra,
    }  # fmt: skip


def unit_vector(dim: int) -> list[float]:
    return [1.0] + [0.0] * (dim - 1)


# -- High: the media index belongs to the engine --------------------------------------------------
def test_media_index_cannot_be_dropped_or_rewritten_through_collections(secure: Server) -> None:
    eng = secure.engine
    before = fingerprint(eng)
    query = "stranded astronauts in deep space"
    first = eng.search(query, 3)["results"][0]["id"]
    dim = eng.media.config.dim
    for key in ("write", "admin"):
        with secure.client(key) as http:
            assert_json_error(http.delete("/collections/media"), 403, 409)
            assert_json_error(
                http.post("/collections/media/points", json={"points": [{"id": 1, "vector": unit_vector(dim)}]}),
                403, 409,
            )  # fmt: skip
            assert_json_error(
                http.request("DELETE", "/collections/media/points", json={"ids": [first]}), 403, 409
            )
            assert_json_error(http.post("/collections/media/snapshot"), 403, 409)
            assert_json_error(http.post("/collections", json={"name": "media", "dim": 4}), 403, 409)
    assert fingerprint(eng) == before
    assert eng.search(query, 3)["results"][0]["id"] == first
    with secure.client("read") as http:  # reading the media index stays allowed
        assert http.get("/collections/media").status_code == 200


def test_ready_and_verify_notice_a_damaged_media_index(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from metamedia.api.app import create_app
    from metamedia.engine import Engine
    from metamedia.settings import Settings

    from ..conftest import TMDB_5000, write_csv_slice

    eng = Engine(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    try:
        eng.ingest([write_csv_slice(TMDB_5000, tmp_path / "s.csv", 8)])
        app = create_app(
            engine=eng, settings=Settings(log_json=False, rate_limit="", auth_disabled=True, host="127.0.0.1")
        )
        with TestClient(app, base_url="http://127.0.0.1") as http:
            assert http.get("/ready").status_code == 200
            eng.vectors.drop_collection("media")  # damage from outside the API (a disk fault, a bug)
            ready = http.get("/ready")
            assert ready.status_code == 503, ready.text
            assert http.get("/admin/verify").json()["ok"] is False
    finally:
        eng.close()


# -- High: deep JSON must be refused before any write ---------------------------------------------
def test_deeply_nested_memory_writes_are_refused_and_store_nothing(secure: Server) -> None:
    with secure.client("admin") as http:
        strategy = http.post(
            "/memory/strategies", json={"title": "deep-probe strategy", "task_type": "recommend"}
        ).json()
        before = fingerprint(secure.engine)
        for levels in (40, 300):
            assert_json_error(
                http.post("/memory/episodes", json=episode("", context={"x": deep(levels)})), 400, 413, 422
            )
            assert_json_error(
                http.post(
                    f"/memory/strategies/{strategy['id']}/evolve",
                    json={"changes": {"params": deep(levels)}, "reason": "probe"},
                ),
                400, 413, 422,
            )  # fmt: skip
        assert fingerprint(secure.engine) == before
        search = http.get("/memory/episodes/search", params={"q": "calm film"})
        assert search.status_code == 200, search.text


def test_deeply_nested_mcp_writes_are_refused(secure: Server) -> None:
    mcp = McpSession(secure.url, {"Authorization": f"Bearer {secure.keys['write']}"})
    try:
        before = fingerprint(secure.engine)
        status, answer = mcp.call(
            "reflexion_store",
            {"session_id": "s", "task": "t", "context": {"x": deep(300)}, "recommended": [],
             "predicted": 0.5, "actual": 0.9, "reward": 1.0, "success": True},
        )  # fmt: skip
        assert status < 500 and tool_failed(answer), answer
        assert fingerprint(secure.engine) == before
        # A JSON-RPC body nested far past any parser's comfort is a clean error, not a traceback.
        raw = mcp.http.post(
            "/mcp", content=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + b"[" * 5000 + b"]" * 5000 + b"}",
            headers=mcp.headers(),
        )  # fmt: skip
        assert 400 <= raw.status_code < 500, raw.text[:300]
        assert "error" in raw.json()
    finally:
        mcp.close()


# -- Medium: a bound key sees only its own user's memory ------------------------------------------
def test_bound_key_cannot_read_another_users_memory(secure: Server) -> None:
    with secure.client("write") as writer:
        bob_ep = writer.post("/memory/episodes", json=episode("bob", task="bob's secret evening")).json()
        writer.post("/memory/episodes", json=episode("alice", task="alice's evening"))
    with secure.client("alice") as alice:
        assert_json_error(
            alice.get("/memory/episodes/search", params={"q": "evening", "user_id": "bob"}), 403
        )
        mine = alice.get("/memory/episodes/search", params={"q": "secret evening", "k": 20})
        assert mine.status_code == 200
        assert {m["episode"]["user_id"] for m in mine.json()} <= {"alice"}, mine.json()
        assert_json_error(alice.get("/memory/causal/effects", params={"user_id": "bob"}), 403)
        assert alice.get("/memory/causal/effects", params={"user_id": "alice"}).status_code == 200
        assert_json_error(alice.get(f"/memory/{bob_ep['id']}/history"), 403, 404)
    mcp = McpSession(secure.url, {"Authorization": f"Bearer {secure.keys['alice']}"})
    try:
        _status, answer = mcp.call("reflexion_search", {"query": "secret evening", "k": 20})
        users = {r["episode"]["user_id"] for r in (tool_result(answer) or {}).get("results", [])}
        assert users <= {"alice"}, users
        _status, answer = mcp.call("causal_effects", {"user_id": "bob"})
        assert tool_failed(answer), answer
        _status, answer = mcp.call("reflexion_analyze", {"episode_id": bob_ep["id"]})
        assert tool_failed(answer), answer
    finally:
        mcp.close()


def test_bound_key_cannot_delete_another_keys_mcp_session(secure: Server) -> None:
    alice = McpSession(secure.url, {"Authorization": f"Bearer {secure.keys['alice']}"})
    try:
        with secure.client("bob") as bob:
            gone = bob.delete("/mcp", headers={"mcp-session-id": alice.session_id, **alice.headers()})
            assert gone.status_code in (403, 404), gone.text
            hijack = bob.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
                headers={**alice.headers(), "Accept": "application/json, text/event-stream"},
            )
            assert hijack.status_code in (403, 404), hijack.text
        _status, answer = alice.call("db_stats", {})
        assert not tool_failed(answer), answer  # alice's session still works
    finally:
        alice.close()


def test_reward_cannot_be_credited_to_another_users_decision(secure: Server) -> None:
    item = secure.engine.store.item_ids()[0]
    with secure.client("alice") as alice:
        decision = alice.get("/users/alice/recommendations", params={"k": 3}).json()["decision_id"]
    before = fingerprint(secure.engine)
    for key in ("bob", "write"):
        with secure.client(key) as other:
            answer = other.post(
                "/users/bob/interactions", json={"item_id": item, "kind": "like", "decision_id": decision}
            )
            assert_json_error(answer, 403, 409, 422)
    assert fingerprint(secure.engine) == before


# -- Medium: concurrent first interactions ----------------------------------------------------------
@pytest.mark.slow
def test_concurrent_first_interactions_all_succeed(secure: Server) -> None:
    items = secure.engine.store.item_ids()[:5]

    def one(i: int) -> int:
        user = f"race-{i // 10}"
        with httpx.Client(base_url=secure.url, timeout=60) as http:
            r = http.post(
                f"/users/{user}/interactions",
                json={"item_id": items[i % 5], "kind": "view"},
                headers={"Authorization": f"Bearer {secure.keys['write']}"},
            )
            return r.status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(one, range(240)))
    assert statuses.count(201) == 240, sorted(set(statuses))


# -- Medium: the demo (auth off on loopback) ---------------------------------------------------------
def test_demo_refuses_cross_site_writes_and_foreign_hosts(demo: Server) -> None:
    eng = demo.engine
    before = fingerprint(eng)
    evil = {"Origin": "https://evil.example"}
    with httpx.Client(base_url=demo.url, timeout=30) as http:
        line = json.dumps({"title": "Planted by a web page"}) + "\n"
        assert_json_error(
            http.post("/admin/ingest/upload", content=line, headers={**evil, "Content-Type": "text/plain"}),
            403,
        )
        assert_json_error(http.post("/admin/snapshot", headers={**evil, "Content-Type": "text/plain"}), 403)
        assert_json_error(http.post("/admin/items", json={"title": "x"}, headers=evil), 403)
        assert_json_error(http.get("/search", params={"q": "war"}, headers=evil), 403)
        # A simple request (no preflight) without Origin must not write either.
        assert_json_error(
            http.post("/admin/ingest/upload", content=line, headers={"Content-Type": "text/plain"}), 403
        )
        assert_json_error(
            http.post("/admin/snapshot", headers={"Content-Type": "application/x-www-form-urlencoded"}), 403
        )
        # DNS rebinding: the attacker's name resolving to 127.0.0.1
        assert_json_error(
            http.get("/search", params={"q": "war"}, headers={"Host": "evil.example"}), 403, 421
        )
        assert_json_error(http.get("/health", headers={"Host": "evil.example:8000"}), 403, 421)
        mcp = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Host": "evil.example", "Accept": "application/json, text/event-stream"},
        )
        assert 400 <= mcp.status_code < 500
        assert fingerprint(eng) == before
        # The local page and local tools keep working.
        own = {"Origin": demo.url}
        assert http.get("/search", params={"q": "war"}, headers=own).status_code == 200
        assert http.post("/admin/items", json={"title": "Local Film"}, headers=own).status_code == 201
        assert http.get("/health", headers={"Host": "localhost"}).status_code == 200


# -- Medium: revocation ends open streams -----------------------------------------------------------
def test_event_stream_ends_when_its_key_is_revoked(secure: Server) -> None:
    store = KeyStore(secure.engine.store.engine)
    key, plaintext = store.create(["admin"], name="stream-then-revoke")
    received: list[str] = []
    ended = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream(
                "GET", f"{secure.url}/events", headers={"Authorization": f"Bearer {plaintext}"},
                timeout=httpx.Timeout(5, read=8),
            ) as response:  # fmt: skip
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        received.append(line)
        except httpx.HTTPError:
            pass
        ended.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.8)
    secure.app.state.events.publish("probe.before", {"n": 1})  # type: ignore[attr-defined]
    time.sleep(0.5)
    store.revoke(key.id)
    time.sleep(0.2)
    secure.app.state.events.publish("probe.after", {"n": 2})  # type: ignore[attr-defined]
    for _ in range(3):
        time.sleep(1.0)
        secure.app.state.events.publish("probe.after", {"n": 3})  # type: ignore[attr-defined]
    assert ended.wait(6), "the stream kept running after its key was revoked"
    assert "event: probe.before" in received
    assert "event: probe.after" not in received


# -- the low classes -------------------------------------------------------------------------------
def test_non_finite_and_absurd_numbers_are_refused(secure: Server) -> None:
    item = secure.engine.store.item_ids()[0]
    before = fingerprint(secure.engine)
    with secure.client("admin") as http:
        raw = {"Content-Type": "application/json"}
        for body in [
            '{"item_id": ITEM, "kind": "view", "context": {"mood": NaN}}',
            '{"item_id": ITEM, "kind": "view", "context": {"mood": Infinity}}',
            '{"item_id": ITEM, "kind": "view", "context": {"mood": -Infinity}}',
            '{"item_id": ITEM, "kind": "view", "context": {"mood": 1e999}}',
            '{"item_id": ITEM, "kind": "view", "timestamp": 1e300}',
            '{"item_id": ITEM, "kind": "view", "timestamp": -1e300}',
            '{"item_id": ITEM, "kind": "watch", "watch_seconds": 1e308}',
        ]:
            body = body.replace("ITEM", str(item))
            assert_json_error(http.post("/users/nan-user/interactions", content=body, headers=raw), 400, 422)
        assert_json_error(
            http.post("/memory/episodes", content=json.dumps(episode("", context={"v": 1e300})), headers=raw),
            422,
        )
        assert_json_error(
            http.post("/memory/episodes", content='{"task":"t","predicted":0.5,"actual":0.9,"reward":1,'
                      '"success":true,"item":{"x":NaN}}', headers=raw), 400, 422,
        )  # fmt: skip
    assert fingerprint(secure.engine) == before
    mcp = McpSession(secure.url, {"Authorization": f"Bearer {secure.keys['write']}"})
    try:
        strategy = tool_result(mcp.call("strategy_store", {"title": "huge reward probe", "description": "d",
                                                           "task_type": "recommend"})[1])  # fmt: skip
        before = fingerprint(secure.engine)
        for reward in (1e308, -1e300):
            _s, answer = mcp.call(
                "strategy_record_outcome", {"strategy_id": strategy["id"], "success": True, "reward": reward}
            )
            assert tool_failed(answer), answer
        _s, answer = mcp.call(
            "record_interaction", {"user_id": "u", "item_id": item, "kind": "watch", "watch_seconds": 1e300}
        )
        assert tool_failed(answer), answer
        assert fingerprint(secure.engine) == before
    finally:
        mcp.close()


def test_booleans_are_not_ids(secure: Server) -> None:
    before = fingerprint(secure.engine)
    with secure.client("admin") as http:
        assert_json_error(http.post("/users/b/interactions", json={"item_id": True, "kind": "view"}), 422)
        for field in ("tmdb_id", "movielens_id"):
            assert_json_error(http.post("/admin/items", json={"title": "Boolean Id", field: True}), 422)
        http.post("/collections", json={"name": "booly", "dim": 2})
        mid = fingerprint(secure.engine)
        assert_json_error(
            http.post("/collections/booly/points", json={"points": [{"id": True, "vector": [1, 0]}]}), 422
        )
        assert_json_error(http.request("DELETE", "/collections/booly/points", json={"ids": [False]}), 422)
        assert fingerprint(secure.engine) == mid
        http.delete("/collections/booly")
    assert fingerprint(secure.engine) == before
    mcp = McpSession(secure.url, {"Authorization": f"Bearer {secure.keys['write']}"})
    try:
        for tool, args in [
            ("get_item", {"item_id": True}),
            ("similar_media", {"item_id": True}),
            ("record_interaction", {"user_id": "b", "item_id": True, "kind": "view"}),
            (
                "reflexion_store",
                {
                    "session_id": "s",
                    "task": "t",
                    "context": {},
                    "recommended": [True],
                    "predicted": 0.5,
                    "actual": 0.9,
                    "reward": 1.0,
                    "success": True,
                },
            ),
        ]:
            _s, answer = mcp.call(tool, args)
            assert tool_failed(answer), (tool, answer)
        assert fingerprint(secure.engine) == before
    finally:
        mcp.close()


def test_forwarded_for_is_not_trusted_by_default(secure: Server, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="metamedia.access"):
        with httpx.Client(base_url=secure.url) as http:
            http.get("/health", headers={"X-Forwarded-For": "6.6.6.6", "X-Request-ID": "xff-probe"})
    clients = [getattr(r, "client", None) for r in caplog.records if r.name == "metamedia.access"]
    assert clients and "6.6.6.6" not in clients and "127.0.0.1" in clients


def test_request_id_never_carries_a_key(secure: Server, caplog: pytest.LogCaptureFixture) -> None:
    key = secure.keys["read"]
    secret = key.split("_", 2)[2]
    with caplog.at_level(logging.INFO, logger="metamedia"), httpx.Client(base_url=secure.url) as http:
        for sent in (key, secret, "x" * 200, "a b", "ok\r\nInjected: 1"):
            try:
                r = http.get("/health", headers={"X-Request-ID": sent})
            except httpx.LocalProtocolError:
                continue
            assert secret not in r.headers["x-request-id"] and len(r.headers["x-request-id"]) <= 64
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert secret not in text


@pytest.mark.parametrize("name", [".", "..", "...", "./x", "a/..", "%2e%2e"])
def test_upload_names_that_are_not_file_names_are_refused(secure: Server, name: str) -> None:
    uploads = Path(secure.engine.settings.data_dir) / "uploads"
    before = sorted(uploads.iterdir()) if uploads.exists() else []
    with secure.client("admin") as http:
        r = http.post("/admin/ingest/upload", params={"name": name}, content=b'{"title": "dots"}\n')
        assert_json_error(r, 400, 422)
    after = sorted(uploads.iterdir()) if uploads.exists() else []
    assert after == before


def test_errors_never_reveal_server_paths(secure: Server) -> None:
    data_dir = str(Path(secure.engine.settings.data_dir).resolve())
    imports = Path(data_dir) / "imports"
    (imports / "broken.csv").write_text("not,a,catalog\n1,2,3\n")
    (imports / "empty.jsonl").write_text("")
    (imports / "adir").mkdir(exist_ok=True)
    with secure.client("admin") as http:
        answers = [
            http.post("/admin/ingest", json={"path": "broken.csv"}),
            http.post("/admin/ingest", json={"path": "empty.jsonl"}),
            http.post("/admin/ingest", json={"path": "adir"}),
            http.post("/admin/ingest", json={"path": "missing.csv"}),
            http.post("/admin/ingest/upload", params={"name": "x.csv"}, content=b"a,b\n1,2\n"),
            http.post("/admin/ingest/upload", params={"name": "x.parquet"}, content=b"\x00\x01garbage"),
            http.post("/admin/ingest/upload", params={"name": "x.jsonl"}, content=b"\xff\xfe{"),
        ]
    for r in answers:
        assert r.status_code < 500, r.text
        assert data_dir not in r.text and "/tmp/" not in r.text, r.text


def test_read_key_can_search_a_collection(secure: Server) -> None:
    with secure.client("write") as writer:
        writer.post("/collections", json={"name": "readable", "dim": 2})
        writer.post("/collections/readable/points", json={"points": [{"id": 1, "vector": [1, 0]}]})
    with secure.client("read") as reader:
        r = reader.post("/collections/readable/search", json={"vector": [1, 0], "k": 1})
        assert r.status_code == 200, r.text
        assert r.json()["hits"][0]["id"] == 1
        assert_json_error(
            reader.post("/collections/readable/points", json={"points": [{"id": 2, "vector": [0, 1]}]}), 403
        )


def test_declared_body_that_never_comes_times_out(secure: Server) -> None:
    host, port = secure.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(
            b"POST /users/slow/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + secure.keys["write"].encode() + b"\r\nContent-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert time.monotonic() - started < 10
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_filter_depth_limit_is_exact(secure: Server) -> None:
    from metamedia.vectors.filters import MAX_DEPTH

    def nested(levels: int) -> dict[str, object]:
        group: dict[str, object] = {"must": [{"field": "x", "eq": 1}]}
        for _ in range(levels - 1):
            group = {"must": [group]}
        return group

    with secure.client("write") as http:
        http.post("/collections", json={"name": "filtered", "dim": 2})
        http.post(
            "/collections/filtered/points",
            json={"points": [{"id": 1, "vector": [1, 0], "payload": {"x": 1}}]},
        )
        ok = http.post("/collections/filtered/search", json={"vector": [1, 0], "filter": nested(MAX_DEPTH)})
        assert ok.status_code == 200, ok.text
        too_deep = http.post(
            "/collections/filtered/search", json={"vector": [1, 0], "filter": nested(MAX_DEPTH + 1)}
        )
        assert_json_error(too_deep, 422)
