"""Auth, scopes, user binding, revocation, injection attempts, secret-free logs, CORS, the keys CLI."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.api.logging import JsonFormatter
from metamedia.client import Forbidden, MetamediaClient, Unauthorized
from metamedia.engine import Engine
from metamedia.errors import InvalidInput
from metamedia.settings import Settings

from .conftest import TMDB_5000, write_csv_slice

NASTY = [
    "' OR '1'='1",
    "1; DROP TABLE items; --",
    '" UNION SELECT secret_sha256 FROM api_keys --',
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "Robert'); DELETE FROM api_keys;--",
    "😀" * 10,
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("security")
    catalog = write_csv_slice(TMDB_5000, root / "slice.csv", 60)
    eng = Engine(Settings(data_dir=root / "data"), embedder=embedder)
    eng.ingest([catalog])
    (root / "data" / "imports").mkdir()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def keys(engine: Engine) -> dict[str, str]:
    store = KeyStore(engine.store.engine)
    out = {}
    for name, scopes, user in [
        ("read", ["read"], None),
        ("write", ["write"], None),
        ("admin", ["admin"], None),
        ("alice", ["read", "write"], "alice"),
    ]:
        _key, plaintext = store.create(scopes, user_id=user, name=name)
        out[name] = plaintext
    return out


@pytest.fixture(scope="module")
def app(engine: Engine):  # type: ignore[no-untyped-def]
    return create_app(engine=engine, settings=Settings(log_json=False, rate_limit=""))


@pytest.fixture(scope="module")
def http(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield client


def as_key(http: TestClient, key: str | None) -> MetamediaClient:
    return MetamediaClient(api_key=key, http=http)


def test_every_route_but_health_and_ready_needs_a_key(http: TestClient) -> None:
    assert http.get("/health").status_code == 200
    assert http.get("/ready").status_code == 200
    for method, path in [
        ("GET", "/search?q=war"),
        ("GET", "/items/1"),
        ("GET", "/items/1/similar"),
        ("GET", "/stats"),
        ("GET", "/collections"),
        ("POST", "/admin/snapshot"),
        ("GET", "/admin/verify"),
        ("GET", "/metrics"),
        ("GET", "/events"),
    ]:
        response = http.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "error" in response.json()


def test_invalid_keys_are_refused(http: TestClient, keys: dict[str, str]) -> None:
    real = keys["read"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")  # right id, wrong secret
    for bad in [forged, "mm_000000000000_" + "x" * 43, "nonsense", real + "x", ""]:
        with pytest.raises(Unauthorized):
            as_key(http, bad).search("war")
    assert http.get("/search", params={"q": "war"}, headers={"X-API-Key": real}).status_code == 200


def test_scopes_read_write_admin(http: TestClient, keys: dict[str, str]) -> None:
    reader, writer, admin = (as_key(http, keys[k]) for k in ("read", "write", "admin"))
    assert reader.search("space adventure", k=3)["results"]
    body = {"name": "scoped", "dim": 4}
    with pytest.raises(Forbidden):
        reader._call("POST", "/collections", json=body)
    assert reader._call("GET", "/collections")["collections"] is not None
    assert writer._call("POST", "/collections", json=body)["name"] == "scoped"
    with pytest.raises(Forbidden):
        writer.create_item({"title": "Not allowed"})
    with pytest.raises(Forbidden):
        reader.verify()
    created = admin.create_item({"title": "Scope Test Film", "overview": "made by an admin key"})
    assert admin.get_item(created["id"])["title"] == "Scope Test Film"
    assert reader.get_item(created["id"])["title"] == "Scope Test Film"


def test_user_bound_key_only_reaches_its_own_user(
    http: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    item = engine.store.item_ids()[0]
    like = {"item_id": item, "kind": "like"}
    writer, alice = as_key(http, keys["write"]), as_key(http, keys["alice"])
    writer._call("POST", "/users/bob/interactions", json=like)
    alice._call("POST", "/users/alice/interactions", json=like)
    bob_before = engine.recs.profile("bob")
    assert alice._call("GET", "/users/alice/profile")["user_id"] == "alice"
    with pytest.raises(Forbidden):
        alice._call("GET", "/users/bob/profile")
    with pytest.raises(Forbidden):
        alice._call("GET", "/users/bob/recommendations")
    with pytest.raises(Forbidden):
        alice._call("POST", "/users/bob/interactions", json=like)
    # Writes not addressed to a user are out of reach of a user-bound key, even with the write scope.
    with pytest.raises(Forbidden):
        alice._call("POST", "/collections", json={"name": "alice-owned", "dim": 3})
    assert alice.search("comedy", k=2)["results"]  # the catalog stays readable
    # An unbound read key reads any user; it still cannot write.
    reader = as_key(http, keys["read"])
    assert reader._call("GET", "/users/bob/profile")["user_id"] == "bob"
    with pytest.raises(Forbidden):
        reader._call("POST", "/users/bob/interactions", json=like)
    # bob's data did not change through any refused call
    bob_after = engine.recs.profile("bob")
    assert bob_after == bob_before


def test_revoked_key_fails_at_once(http: TestClient, engine: Engine) -> None:
    store = KeyStore(engine.store.engine)
    key, plaintext = store.create(["read"], name="short-lived")
    client = as_key(http, plaintext)
    assert client.search("love", k=1)["results"]
    store.revoke(key.id)
    with pytest.raises(Unauthorized):
        client.search("love", k=1)
    assert not store.list(include_revoked=False) or key.id not in {
        k.id for k in store.list(include_revoked=False)
    }


def test_key_revoked_by_another_process_is_refused_within_the_cache_time(
    http: TestClient, engine: Engine
) -> None:
    """Verified keys are remembered for `key_cache_seconds` (1 s here, the default); a revocation
    the server cannot see (made by the CLI in another process: here a bare SQL UPDATE) holds once
    that time has passed."""
    cache_seconds = http.app.state.settings.key_cache_seconds  # type: ignore[attr-defined]
    assert cache_seconds == 1.0
    key, plaintext = KeyStore(engine.store.engine).create(["read"], name="revoked-elsewhere")
    client = as_key(http, plaintext)
    assert client.search("love", k=1)["results"]
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET revoked_at = 1 WHERE id = :id"), {"id": key.id})
    time.sleep(cache_seconds + 0.2)
    with pytest.raises(Unauthorized):
        client.search("love", k=1)


def test_injection_and_traversal_attempts_are_harmless(
    http: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    admin_headers = {"X-API-Key": keys["admin"]}
    items_before, keys_before = engine.count(), len(KeyStore(engine.store.engine).list())
    for nasty in NASTY:
        responses = [
            http.get("/search", params={"q": nasty}, headers=admin_headers),
            http.get("/search", params={"q": "war", "genre": nasty}, headers=admin_headers),
            http.get("/search", params={"type": nasty}, headers=admin_headers),
            http.get(f"/items/{nasty}", headers=admin_headers),
            http.get(f"/collections/{nasty}", headers=admin_headers),
            http.post("/admin/ingest", json={"path": nasty}, headers=admin_headers),
            http.post(
                "/admin/ingest/upload",
                params={"name": nasty},
                content=b'{"title": "x"}\n',
                headers=admin_headers,
            ),
            http.get("/users/" + nasty.replace("/", "_") + "/profile", headers=admin_headers),
            http.get("/search", params={"q": "x"}, headers={"X-API-Key": nasty.encode()}),
        ]
        for response in responses:
            assert response.status_code < 500, (nasty, response.request.url, response.text)
    # Absolute paths and escapes out of the ingest folder are refused even when the file exists.
    for escape in ["/etc/passwd", "../metamedia.db", "../../" + str(Path("/etc/hostname"))]:
        response = http.post("/admin/ingest", json={"path": escape}, headers=admin_headers)
        assert response.status_code == 422, escape
    assert engine.count() == items_before
    assert len(KeyStore(engine.store.engine).list()) == keys_before
    assert http.get("/admin/verify", headers=admin_headers).json()["ok"] is True


def test_logs_are_json_with_request_ids_and_never_show_keys(http: TestClient, keys: dict[str, str]) -> None:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("metamedia")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        key = keys["read"]
        http.get(
            "/search",
            params={"q": "heist"},
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-42"},
        )
        http.get("/search", params={"q": key}, headers={"X-API-Key": key})  # a key pasted as a query
        http.get("/search", headers={"X-API-Key": key + "tampered"})
        logging.getLogger("metamedia.test").warning(
            "caller sent %s", key, extra={"authorization": key, "note": key}
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    text = sink.getvalue()
    secret = key.split("_", 2)[2]
    assert key not in text and secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    access = [line for line in lines if line["logger"] == "metamedia.access"]
    assert len(access) == 3
    assert (
        access[0]["request_id"] == "req-42" and access[0]["route"] == "/search" and access[0]["status"] == 200
    )
    assert access[0]["key_id"] == key.split("_")[1]
    assert access[2]["status"] == 401
    assert len({line["request_id"] for line in access}) == 3


def test_response_carries_request_id(http: TestClient, keys: dict[str, str]) -> None:
    given = http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    forged = http.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert (
        forged.headers["x-request-id"] != "bad id\twith spaces" and len(forged.headers["x-request-id"]) == 32
    )


def test_auth_off_only_on_loopback(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    off = engine.settings.replace(auth_disabled=True, log_json=False)
    with pytest.raises(InvalidInput, match="loopback"):
        create_app(off.replace(host="0.0.0.0"), engine=engine)
    with caplog.at_level(logging.WARNING, logger="metamedia"):
        app = create_app(off.replace(host="127.0.0.1"), engine=engine)
    assert any("DISABLED" in r.getMessage() for r in caplog.records)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/search", params={"q": "war"}).status_code == 200
        assert client.get("/admin/verify").status_code == 200


def test_cors_closed_by_default_and_allow_list_when_set(engine: Engine, http: TestClient) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in http.options("/search", headers=preflight).headers
    app = create_app(engine=engine, settings=Settings(log_json=False, cors_origins=("https://ok.example",)))
    with TestClient(app) as client:
        ok = client.options("/search", headers={**preflight, "Origin": "https://ok.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ok.example"
        bad = client.options("/search", headers=preflight)
        assert "access-control-allow-origin" not in bad.headers


def test_keys_cli_prints_the_key_once_and_revokes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from metamedia.cli.keys import app as keys_app
    from metamedia.store.factory import open_store

    monkeypatch.setenv("METAMEDIA_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(
        keys_app, ["create", "--scope", "read", "--scope", "write", "--user", "u7", "--json"]
    )
    assert created.exit_code == 0, created.output
    info = json.loads(created.output)
    assert info["scopes"] == ["read", "write"] and info["user_id"] == "u7"
    listed = runner.invoke(keys_app, ["list", "--json"])
    assert info["id"] in listed.output and info["key"] not in listed.output
    store = open_store(Settings(data_dir=tmp_path).resolved_database_url)
    try:
        ks = KeyStore(store.engine)
        assert ks.verify(info["key"]) is not None
        with store.engine.connect() as conn:  # only the hash is stored
            dump = " ".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM api_keys"))
        assert info["key"].split("_", 2)[2] not in dump
        assert runner.invoke(keys_app, ["revoke", info["id"]]).exit_code == 0
        assert ks.verify(info["key"]) is None
    finally:
        store.close()
    bad = runner.invoke(keys_app, ["create", "--scope", "root"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output
