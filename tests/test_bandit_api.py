"""GET /bandit and POST /bandit/evaluate through a real FastAPI app and a real BanditService."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from metamedia.api.errors import install_error_handlers
from metamedia.api.routes_bandit import router
from metamedia.bandit.reward import Outcome
from metamedia.bandit.service import BanditService


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    service = BanditService(create_engine(f"sqlite:///{tmp_path / 'b.db'}"), ("als", "ease"), seed=0)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.engine = SimpleNamespace(bandit=service)
    for i in range(40):
        d = service.choose(f"u{i}", {"interactions": 80})
        service.record_reward(d.id, [Outcome("click")] if d.arm == "ease" else [])
    return TestClient(app)


def test_get_bandit_reports_arms_and_shares(client: TestClient) -> None:
    body = client.get("/bandit").json()
    assert body["decisions"] == 40
    arms = {a["name"]: a for a in body["arms"]}
    assert set(arms) == {"als", "ease"}
    assert sum(a["selection_share"] for a in arms.values()) == pytest.approx(1.0)
    assert arms["ease"]["posterior_mean"] > arms["als"]["posterior_mean"]
    assert body["policy_version"].startswith("thompson[")


def test_post_evaluate(client: TestClient) -> None:
    response = client.post("/bandit/evaluate", json={"policy": "fixed", "arm": "ease"})
    assert response.status_code == 200
    body = response.json()
    assert body["policy"] == "fixed:ease"
    assert body["snips"]["value"] == pytest.approx(0.2)
    assert client.post("/bandit/evaluate", json={"policy": "fixed", "arm": "nope"}).status_code == 422
    assert client.post("/bandit/evaluate", json={"policy": "greedy"}).status_code == 422
    assert client.post("/bandit/evaluate", json={"policy": "current"}).json()["n"] == 40
