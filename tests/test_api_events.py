"""GET /events over a real socket: live events, Last-Event-ID replay, lost-event reset, heartbeats."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from metamedia.api.app import create_app
from metamedia.api.events import EventBus
from metamedia.api.keys import KeyStore
from metamedia.client import MetamediaClient, StreamEvent, Unauthorized
from metamedia.engine import Engine
from metamedia.settings import Settings

from .conftest import TMDB_5000, write_csv_slice


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, embedder
) -> Iterator[tuple[str, dict[str, str], object]]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("events")
    engine = Engine(Settings(data_dir=root / "data"), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 30)])
    store = KeyStore(engine.store.engine)
    keys = {"admin": store.create(["admin"])[1], "bob": store.create(["read"], user_id="bob")[1]}
    app = create_app(
        engine=engine,
        settings=Settings(log_json=False, rate_limit="", events_buffer=5, events_heartbeat_s=0.5),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", keys, app
    srv.should_exit = True
    thread.join(15)
    engine.close()


def collect(client: MetamediaClient, n: int, **kwargs: object) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for event in client.events(timeout=10, **kwargs):  # type: ignore[arg-type]
        out.append(event)
        if len(out) == n:
            break
    return out


def test_live_events_then_resume_with_last_event_id(server) -> None:  # type: ignore[no-untyped-def]
    url, keys, app = server
    with MetamediaClient(url, keys["admin"]) as admin:
        received: list[StreamEvent] = []
        listener = threading.Thread(target=lambda: received.extend(collect(admin, 2, kinds=["item.created"])))
        listener.start()
        time.sleep(0.5)  # let the subscription open before publishing
        first = admin.create_item({"title": "Event One"})
        app.state.events.publish("learner.run", {"ok": True})  # filtered out by kind
        second = admin.create_item({"title": "Event Two"})
        listener.join(15)
        assert [e.data["item_id"] for e in received] == [first["id"], second["id"]]
        assert all(e.kind == "item.created" for e in received)
        # Reconnect after the first: exactly what came later is replayed from the buffer.
        replay = collect(admin, 2, last_event_id=received[0].id)
        assert replay[0].kind == "learner.run"
        assert replay[1].id == received[1].id and replay[1].data["item_id"] == second["id"]


def test_too_old_id_gets_reset_then_buffer(server) -> None:  # type: ignore[no-untyped-def]
    url, keys, app = server
    bus: EventBus = app.state.events
    oldest = bus.last_id
    for i in range(8):  # the buffer holds 5
        bus.publish("strategy.evolved", {"n": i})
    with MetamediaClient(url, keys["admin"]) as admin:
        events = collect(admin, 6, last_event_id=str(oldest))
    assert events[0].kind == "reset"
    assert [e.data["n"] for e in events[1:]] == [3, 4, 5, 6, 7]


def test_user_bound_key_sees_only_its_users_events(server) -> None:  # type: ignore[no-untyped-def]
    url, keys, app = server
    bus: EventBus = app.state.events
    start = bus.last_id
    bus.publish("interaction", {"user_id": "alice", "item_id": 1})
    bus.publish("interaction", {"user_id": "bob", "item_id": 2})
    bus.publish("catalog.ingested", {"changed": 0})
    with MetamediaClient(url, keys["bob"]) as bob:
        events = collect(bob, 2, last_event_id=str(start))
    assert [(e.kind, e.data.get("user_id")) for e in events] == [
        ("interaction", "bob"),
        ("catalog.ingested", None),
    ]
    with MetamediaClient(url) as anonymous, pytest.raises(Unauthorized):
        collect(anonymous, 1)


def test_heartbeats_keep_idle_streams_alive(server) -> None:  # type: ignore[no-untyped-def]
    url, keys, _app = server
    comments = 0
    with httpx.stream("GET", f"{url}/events", headers={"X-API-Key": keys["admin"]}, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                comments += 1
                if comments == 2:
                    break
    assert comments == 2


def test_bus_buffer_is_bounded_and_ids_grow() -> None:
    bus = EventBus(capacity=3)
    ids = [bus.publish("k", {"i": i}).id for i in range(10)]
    assert ids == sorted(ids) and len(set(ids)) == 10
    events, lost = bus.since(ids[0])
    assert lost and [e.data["i"] for e in events] == [7, 8, 9]
    events, lost = bus.since(ids[7])
    assert not lost and [e.data["i"] for e in events] == [8, 9]
