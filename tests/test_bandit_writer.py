"""The bandit's decision log written off the request path: nothing queued is lost or left stale."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, func, select

from metamedia.bandit.log import decisions_table
from metamedia.bandit.reward import Outcome
from metamedia.bandit.service import BanditService
from metamedia.bandit.writer import DecisionWriter

ARMS = ("als", "ease", "popularity")


def logged(path: Path) -> dict[str, list[int]]:
    """Decision id -> served items, read by a fresh connection (what another process would see)."""
    with create_engine(f"sqlite:///{path}").connect() as conn:
        rows = conn.execute(select(decisions_table.c.id, decisions_table.c.served_items)).all()
    return {r.id: list(r.served_items or []) for r in rows}


def test_queued_decisions_are_written_with_their_items_by_close(tmp_path: Path) -> None:
    db = tmp_path / "bandit.db"
    service = BanditService(create_engine(f"sqlite:///{db}"), ARMS, seed=1)
    service.writer.interval = 3600.0  # only close() may write them
    decisions = [service.choose(f"u{i}", {"interactions": 3}) for i in range(20)]
    for i, d in enumerate(decisions):
        if i == 10:
            service.flush()  # the rest get their items after their row was written
        service.attach_items(d.id, [i, i + 1])
    service.close()
    assert logged(db) == {d.id: [i, i + 1] for i, d in enumerate(decisions)}


def test_a_reward_joins_a_decision_that_was_still_queued(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'bandit.db'}")
    service = BanditService(engine, ARMS, seed=2)
    service.writer.interval = 3600.0
    d = service.choose("u", {"interactions": 3})
    service.attach_items(d.id, [7])
    assert service.record_reward(d.id, [Outcome("click"), Outcome("watch", 1.0)]) > 0
    assert service.logged_decision(d.id).served_items == [7]
    assert service.stats()["rewarded"] == 1
    service.close()


def test_items_amended_while_a_flush_writes_reach_the_table(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'bandit.db'}")
    service = BanditService(engine, ARMS, seed=3)  # creates the tables
    service.close()
    writer = DecisionWriter(engine, interval=3600.0)
    row = {
        "id": "d1", "created_at": 0.0, "user_id": "u", "variant": "control", "policy_version": "v",
        "context": {}, "bucket": "all", "eligible_arms": list(ARMS), "probabilities": {"als": 1.0},
        "arm": "als", "propensity": 1.0, "served_items": [], "reward": None, "rewarded_at": None,
    }  # fmt: skip
    writer.add(row)
    real_begin = engine.begin

    def begin_then_amend():  # type: ignore[no-untyped-def]
        assert writer.amend_items("d1", [4, 5])  # a request finishing while the batch is in flight
        return real_begin()

    engine.begin = begin_then_amend  # type: ignore[method-assign]
    assert writer.flush() == 1
    engine.begin = real_begin  # type: ignore[method-assign]
    assert logged(tmp_path / "bandit.db") == {"d1": []} and writer.pending() == 1
    writer.close()
    assert logged(tmp_path / "bandit.db") == {"d1": [4, 5]} and writer.pending() == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(decisions_table)).scalar() == 1
