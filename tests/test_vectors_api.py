"""HTTP routes of the vector store, through a real FastAPI app and TestClient."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient

from metamedia.api.errors import install_error_handlers
from metamedia.api.routes_vectors import router
from metamedia.vectors import VectorDB
from metamedia.vectors.synthetic import clustered

DIM = 8


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)  # the real app's handlers: MetamediaError and 422 -> {"error", "detail"}

    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp_path / 's.db'}"), tmp_path)
    # The routes serve the engine's media_db: the database holding the media index (faiss here).
    app.state.engine = SimpleNamespace(vectors=db, media_db=db)
    return TestClient(app)


def points_body(n: int, start: int = 0) -> dict:
    vectors = clustered(n, DIM, clusters=5, seed=start)
    return {
        "points": [
            {
                "id": start + i,
                "vector": vectors[i].tolist(),
                "payload": {"year": 1990 + i % 20, "tags": ["a"]},
            }
            for i in range(n)
        ]
    }


def test_collection_lifecycle_and_search(client: TestClient) -> None:
    created = client.post("/collections", json={"name": "m", "dim": DIM, "metric": "cosine"})
    assert created.status_code == 201
    assert created.json()["count"] == 0
    assert client.post("/collections", json={"name": "m", "dim": DIM}).status_code == 409
    assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["m"]

    body = points_body(200)
    upserted = client.post("/collections/m/points", json=body)
    assert upserted.status_code == 200 and upserted.json()["count"] == 200

    query = body["points"][7]["vector"]
    hits = client.post("/collections/m/search", json={"vector": query, "k": 3}).json()["hits"]
    assert hits[0]["id"] == 7 and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 3

    flt = {"must": [{"field": "year", "range": {"gte": 2005}}]}
    filtered = client.post("/collections/m/search", json={"vector": query, "k": 50, "filter": flt}).json()[
        "hits"
    ]
    years = {p["id"]: p["payload"]["year"] for p in body["points"]}
    assert filtered and all(years[h["id"]] >= 2005 for h in filtered)
    assert len(filtered) == sum(y >= 2005 for y in years.values())

    got = client.get("/collections/m/points/7").json()
    assert got["payload"] == {"year": 1997, "tags": ["a"]}
    np.testing.assert_allclose(got["vector"], np.array(query) / np.linalg.norm(query), rtol=1e-5)

    deleted = client.request("DELETE", "/collections/m/points", json={"ids": [7, 8, 10_000]})
    assert deleted.json() == {"deleted": 2, "count": 198}
    assert client.get("/collections/m/points/7").status_code == 404
    hits = client.post("/collections/m/search", json={"vector": query, "k": 3}).json()["hits"]
    assert 7 not in [h["id"] for h in hits]

    assert client.post("/collections/m/snapshot").json()["snapshot"].startswith("v")
    described = client.get("/collections/m").json()
    assert described["count"] == 198 and described["snapshot"] is not None
    assert client.delete("/collections/m").json() == {"dropped": "m"}
    assert client.get("/collections/m").status_code == 404


def test_errors_are_json_with_the_right_status(client: TestClient) -> None:
    client.post("/collections", json={"name": "m", "dim": DIM})
    client.post("/collections/m/points", json=points_body(20))
    before = client.get("/collections/m").json()

    missing = client.post("/collections/nope/search", json={"vector": [0.1] * DIM})
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"] and missing.json()["detail"] == {"collection": "nope"}

    wrong_dim = client.post("/collections/m/search", json={"vector": [0.1] * (DIM + 1)})
    assert wrong_dim.status_code == 422 and "dimension" in wrong_dim.json()["error"]

    bad_points = points_body(2, start=100)
    bad_points["points"][1]["vector"] = [0.5] * 3
    refused = client.post("/collections/m/points", json=bad_points)
    assert refused.status_code == 422 and refused.json()["detail"] == {"ids": [101]}

    bad_filter = client.post(
        "/collections/m/search",
        json={"vector": [0.1] * DIM, "filter": {"must": [{"field": "year", "near": 1}]}},
    )
    assert bad_filter.status_code == 422 and "unknown operator 'near'" in bad_filter.json()["error"]

    bad_payload = points_body(1, start=200)
    bad_payload["points"][0]["payload"] = {"x": {"deep": 1}}
    assert client.post("/collections/m/points", json=bad_payload).status_code == 422

    for raw in (
        '{"vector": [NaN, 0, 0, 0, 0, 0, 0, 0]}',
        '{"vector": [Infinity, 0, 0, 0, 0, 0, 0, 0]}',
        '{"vector": [0.1, 0, 0, 0, 0, 0, 0, 0], "threshold": NaN}',
    ):
        response = client.post(
            "/collections/m/search", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, raw
        assert response.json()["error"].startswith("invalid")
    nan_point = '{"points": [{"id": 300, "vector": [NaN, 0, 0, 0, 0, 0, 0, 0]}]}'
    response = client.post(
        "/collections/m/points", content=nan_point, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422

    assert client.post("/collections/m/search", json={"vector": [0.1] * DIM, "k": 0}).status_code == 422
    assert client.post("/collections/m/search", json={"vector": [0.1] * DIM, "ef": 5000}).status_code == 422
    assert (
        client.post(
            "/collections", json={"name": "x", "dim": 8, "metric": "manhattan", "precision": "pq"}
        ).status_code
        == 422
    )
    assert client.post("/collections", json={"name": "bad/name", "dim": 8}).status_code == 422
    assert client.post("/collections", json={"name": "y", "dim": 0}).status_code == 422
    assert client.request("DELETE", "/collections/m/points", json={"ids": []}).status_code == 422

    after = client.get("/collections/m").json()
    assert (after["count"], after["version"]) == (before["count"], before["version"])
