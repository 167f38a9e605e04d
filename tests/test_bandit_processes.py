"""Two server processes over one store: a reward may reach the process that did not log the decision."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from metamedia.bandit.reward import Outcome
from metamedia.bandit.service import BanditService
from metamedia.errors import NotFound

ARMS = ("als", "ease", "popularity")


def _serve_one_decision(db: str, interval: float, out: multiprocessing.Queue, done: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    """Another server process: logs one decision through its own queued writer, then idles."""
    service = BanditService(create_engine(f"sqlite:///{db}"), ARMS, seed=5)
    service.writer.interval = interval  # its background flush writes the row after `interval`
    decision = service.choose("viewer", {"interactions": 3})
    service.attach_items(decision.id, [11, 12])
    out.put(decision.id)
    done.wait(30)
    service.close()


def _other_process(db: Path, interval: float) -> tuple[str, multiprocessing.Event, multiprocessing.Process]:  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    out, done = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve_one_decision, args=(str(db), interval, out, done))
    proc.start()
    return out.get(timeout=60), done, proc


def test_a_reward_waits_for_the_decision_another_process_has_queued(tmp_path: Path) -> None:
    db = tmp_path / "bandit.db"
    BanditService(create_engine(f"sqlite:///{db}"), ARMS).close()  # the tables exist before both start
    decision_id, done, proc = _other_process(db, interval=0.3)
    try:
        here = BanditService(create_engine(f"sqlite:///{db}"), ARMS, peer_wait_s=5.0)
        assert here.record_reward(decision_id, [Outcome("click")]) > 0
        assert here.logged_decision(decision_id).served_items == [11, 12]
        assert here.stats()["rewarded"] == 1
        here.close()
    finally:
        done.set()
        proc.join(30)


def test_without_the_wait_the_queued_decision_is_not_found_and_nothing_is_written(tmp_path: Path) -> None:
    db = tmp_path / "bandit.db"
    BanditService(create_engine(f"sqlite:///{db}"), ARMS).close()
    decision_id, done, proc = _other_process(db, interval=30.0)  # not flushed while we look
    try:
        here = BanditService(create_engine(f"sqlite:///{db}"), ARMS)
        with pytest.raises(NotFound):
            here.record_reward(decision_id, [Outcome("click")])
        assert here.stats()["rewarded"] == 0
        here.close()
    finally:
        done.set()
        proc.join(30)
    # the other process wrote its decision on close: nothing it acknowledged was lost
    late = BanditService(create_engine(f"sqlite:///{db}"), ARMS)
    assert late.logged_decision(decision_id).served_items == [11, 12]
    late.close()
