"""Real servers for the adversarial suite: uvicorn on a loopback socket, auth on and auth off.

Each server runs the real app over a real engine (a 40-item TMDB slice) in a thread of the test
process, so a test can both attack it over HTTP and look at the store of record directly.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import inspect, select, table, text

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.engine import Engine
from metamedia.settings import Settings

from ..conftest import TMDB_5000, write_csv_slice


def settings(**values: object) -> Settings:
    """Settings for a test server (fields this version does not know are left out)."""
    known = set(Settings.__dataclass_fields__)
    return Settings(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]


@dataclass
class Server:
    """A running server, its engine and the keys made for it (name -> plaintext)."""

    url: str
    engine: Engine
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    app: object = None

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.url, headers={**auth, **headers}, timeout=30)


def fingerprint(engine: Engine) -> dict[str, str]:
    """A checksum per table of the store of record, plus what the media index holds."""
    out: dict[str, str] = {}
    # decisions of accepted calls are queued and written in batches: count them where they are bound
    # to land, so only what a refused call adds (or removes) shows as a difference
    engine.bandit.flush()
    with engine.store.engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            if name in ("users",):
                # last_seen moves on accepted reads; row set is what a rejection must not change
                rows = conn.execute(text("SELECT id FROM users ORDER BY id")).all()
            else:
                rows = conn.execute(select(text("*")).select_from(table(name))).all()
            digest = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()[:16]
            out[name] = f"{len(rows)}:{digest}"
    out["media.count"] = str(engine.media.count())
    out["collections"] = ",".join(sorted(c.name for c in engine.vectors.list_collections()))
    return out


def _serve(app: object, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve like `metamedia serve` does (same proxy-header policy), on a loopback port."""
    try:
        from metamedia.api.serving import proxy_options

        options = proxy_options(app.state.settings)  # type: ignore[attr-defined]
    except ImportError:  # the code before issue 17
        options = {}
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    return srv, thread


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engine(root: Path, embedder: object) -> Engine:
    eng = Engine(Settings(data_dir=root / "data"), embedder=embedder)  # type: ignore[arg-type]
    eng.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 40)])
    (root / "data" / "imports").mkdir(exist_ok=True)
    eng.bandit  # noqa: B018  (its arms are seeded on first use: do it now, not inside a compared request)
    return eng


@pytest.fixture(scope="package")
def secure(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """Auth on: keys read, write, admin (unbound) and alice/bob (read+write, bound to their user)."""
    eng = _engine(tmp_path_factory.mktemp("adv-secure"), embedder)
    store = KeyStore(eng.store.engine)
    server = Server("", eng)
    for name, scopes, user in [
        ("read", ["read"], None),
        ("write", ["write"], None),
        ("admin", ["admin"], None),
        ("alice", ["read", "write"], "alice"),
        ("bob", ["read", "write"], "bob"),
    ]:
        key, plaintext = store.create(scopes, user_id=user, name=name)
        server.keys[name], server.key_ids[name] = plaintext, key.id
    settings_ = settings(log_json=False, rate_limit="", events_heartbeat_s=0.3, request_body_timeout_s=1.0)
    server.app = create_app(engine=eng, settings=settings_)
    port = _port()
    srv, thread = _serve(server.app, port)
    server.url = f"http://127.0.0.1:{port}"
    yield server
    srv.should_exit = True
    thread.join(20)
    eng.close()


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """Auth off on loopback: the `make run` demo."""
    eng = _engine(tmp_path_factory.mktemp("adv-demo"), embedder)
    port = _port()
    settings_ = settings(
        log_json=False, rate_limit="", auth_disabled=True, host="127.0.0.1", port=port,
        request_body_timeout_s=1.0,
    )  # fmt: skip
    server = Server("", eng, auth=False)
    server.app = create_app(engine=eng, settings=settings_)
    srv, thread = _serve(server.app, port)
    server.url = f"http://127.0.0.1:{port}"
    yield server
    srv.should_exit = True
    thread.join(20)
    eng.close()


def assert_json_error(response: httpx.Response, *statuses: int) -> None:
    """The status is one of `statuses` and the body is our JSON error shape."""
    assert response.status_code in statuses, (
        response.request.method,
        response.request.url,
        response.status_code,
        response.text[:300],
    )
    body = response.json()
    assert isinstance(body, dict) and ("error" in body), body
