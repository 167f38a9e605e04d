"""Rate limits (in memory and on a real redis-server), body size limits, parameter bounds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.engine import Engine
from metamedia.settings import Settings

from .conftest import TMDB_5000, write_csv_slice
from .test_ratelimit_sqlite import run_processes, with_workers


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("limits")
    eng = Engine(Settings(data_dir=root / "data"), embedder=embedder)
    eng.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 40)])
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def key_pair(engine: Engine) -> tuple[str, str]:
    store = KeyStore(engine.store.engine)
    return store.create(["admin"], name="a")[1], store.create(["admin"], name="b")[1]


def _exhaust_then_recover(client: TestClient, key: str, other_key: str) -> None:
    headers = {"X-API-Key": key}
    codes = [client.get("/stats", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    refused = client.get("/stats", headers=headers)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after >= 1
    assert "rate limit" in refused.json()["error"]
    # The limit is per key: another key is unaffected.
    assert client.get("/stats", headers={"X-API-Key": other_key}).status_code == 200
    time.sleep(retry_after + 0.1)
    assert client.get("/stats", headers=headers).status_code == 200


def test_rate_limit_in_memory_429_then_recovers(engine: Engine, key_pair: tuple[str, str]) -> None:
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit="3/second"))
    with TestClient(app) as client:
        _exhaust_then_recover(client, *key_pair)
        assert client.get("/ready").json()["rate_limit_storage"] is True


def test_rate_limit_on_redis_is_shared_between_servers(
    engine: Engine, key_pair: tuple[str, str], redis_url: str
) -> None:
    api = Settings(log_json=False, rate_limit="3/second", redis_url=redis_url)
    first, second = create_app(engine=engine, settings=api), create_app(engine=engine, settings=api)
    assert first.state.limiter.backend == "redis"
    with TestClient(first) as a, TestClient(second) as b:
        _exhaust_then_recover(a, *key_pair)
        time.sleep(1.1)
        headers = {"X-API-Key": key_pair[0]}
        # Three hits on one server use up the window for the other: the counts live in Redis.
        assert [a.get("/stats", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
        assert b.get("/stats", headers=headers).status_code == 429


def test_rate_limit_on_sqlite_is_shared_between_server_processes(engine: Engine, tmp_path: Path) -> None:
    key, secret = KeyStore(engine.store.engine).create(["admin"], name="two-processes")
    api = with_workers(Settings(log_json=False, rate_limit="8/minute", data_dir=tmp_path), 2)
    first, second = create_app(engine=engine, settings=api), create_app(engine=engine, settings=api)
    assert first.state.limiter.backend == "sqlite"
    # Two other OS processes spend six of the key's eight requests in this minute...
    spent = run_processes(
        tmp_path / "run" / "ratelimit.sqlite3", "8/minute", 3, 2, identifier=f"key:{key.id}"
    )
    assert sum(int(r["admitted"]) for r in spent) == 6
    headers = {"X-API-Key": secret}
    with TestClient(first) as a, TestClient(second) as b:
        # ...so the two servers here admit two more between them, then refuse with Retry-After.
        assert [
            a.get("/stats", headers=headers).status_code,
            b.get("/stats", headers=headers).status_code,
        ] == [200, 200]
        for client in (a, b):
            refused = client.get("/stats", headers=headers)
            assert refused.status_code == 429 and "rate limit" in refused.json()["error"]
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
        ready = a.get("/ready").json()
        assert ready["rate_limit_backend"] == "sqlite" and ready["rate_limit_storage"] is True
        # A storage that fails while serving answers 503 with a JSON body, and /ready says so.
        first.state.limiter.storage.close()
        failed = a.get("/stats", headers=headers)
        assert failed.status_code == 503 and "rate-limit storage (sqlite)" in failed.json()["error"]
        not_ready = a.get("/ready")
        assert not_ready.status_code == 503 and not_ready.json()["rate_limit_storage"] is False
        assert b.get("/stats", headers=headers).status_code == 429  # the other server still counts


def test_failed_authentication_is_throttled_per_address(engine: Engine) -> None:
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit="5/minute"))
    with TestClient(app) as client:
        codes = [
            client.get("/stats", headers={"X-API-Key": "mm_000000000000_guess"}).status_code for _ in range(7)
        ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]


def test_body_size_limit_413(engine: Engine, key_pair: tuple[str, str]) -> None:
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit="", max_body_bytes=4096))
    headers = {"X-API-Key": key_pair[0], "Content-Type": "application/json"}
    big = b'{"title": "' + b"x" * 10_000 + b'"}'
    with TestClient(app) as client:
        declared = client.post("/admin/items", content=big, headers=headers)
        assert declared.status_code == 413 and declared.json()["detail"]["limit"] == 4096

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        streamed = client.post("/admin/items", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        small = client.post("/admin/items", json={"title": "Small Enough"}, headers=headers)
        assert small.status_code == 201


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/search", {"q": "war", "k": 0}),
        ("/search", {"q": "war", "k": 100_000}),
        ("/search", {"q": "war", "rating_min": "NaN"}),
        ("/search", {"q": "war", "rating_min": "inf"}),
        ("/search", {"q": "x" * 501}),
        ("/search", {"q": "war", "year_min": 99999}),
        ("/items/1/similar", {"k": -1}),
    ],
)
def test_parameter_bounds(
    engine: Engine, key_pair: tuple[str, str], path: str, params: dict[str, object]
) -> None:
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit=""))
    with TestClient(app) as client:
        response = client.get(path, params=params, headers={"X-API-Key": key_pair[0]})
    assert response.status_code == 422, response.text


def test_nan_and_wrong_dimension_vectors_refused(engine: Engine, key_pair: tuple[str, str]) -> None:
    app = create_app(engine=engine, settings=Settings(log_json=False, rate_limit=""))
    headers = {"X-API-Key": key_pair[0], "Content-Type": "application/json"}
    with TestClient(app) as client:
        assert (
            client.post("/collections", json={"name": "bounds", "dim": 3}, headers=headers).status_code == 201
        )
        nan = b'{"points": [{"id": 1, "vector": [NaN, 0.0, 1.0]}]}'
        assert client.post("/collections/bounds/points", content=nan, headers=headers).status_code == 422
        inf = b'{"points": [{"id": 1, "vector": [Infinity, 0.0, 1.0]}]}'
        assert client.post("/collections/bounds/points", content=inf, headers=headers).status_code == 422
        wrong = client.post(
            "/collections/bounds/points", json={"points": [{"id": 1, "vector": [1.0, 2.0]}]}, headers=headers
        )
        assert wrong.status_code == 422
        item_nan = b'{"title": "Bad", "vote_average": NaN}'
        assert client.post("/admin/items", content=item_nan, headers=headers).status_code == 422
