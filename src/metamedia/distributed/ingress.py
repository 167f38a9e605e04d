"""The ingress side of Ray serving: the sharded engine, the remote embedder and read-your-writes.

`open_sharded_engine` builds a normal `Engine` on the PostgreSQL store of record whose media
collection is `ShardedMedia` and whose embedder calls the `QueryEmbedder` deployment; `build_app`
is `api.app.create_app` on it plus `ReadYourWrites`, so the HTTP API (routes, auth, limits,
errors) is the one `metamedia serve` answers.

Read-your-writes over HTTP: a write answers header `X-Metamedia-Seq: n` (its change number);
a read sent with `X-Metamedia-Min-Seq: n` is answered only from shard replicas that have applied
change n, waiting up to `shard_wait_s`, else 503 with a JSON body.
"""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..embed.model import TextEmbedder
from ..engine import Engine
from ..errors import InvalidInput
from ..ports import VectorCollection
from ..settings import Settings
from ..vectors_pg.collection import PgCollection
from .media import LAYOUT_KEY, MIN_SEQ, WRITTEN, ShardedMedia, ShardRouter
from .sharding import Layout

SEQ_HEADER = "x-metamedia-seq"
MIN_SEQ_HEADER = "x-metamedia-min-seq"
SHARD_DEPLOYMENT = "shard"


class RemoteEmbedder:
    """The engine's `Embedder` port answered by the QueryEmbedder deployment."""

    def __init__(self, handle: DeploymentHandle, timeout_s: float = 60.0) -> None:
        self.handle = handle
        self.dim = 384
        self.timeout_s = timeout_s
        self.query_backend = "ray"
        self._name: str | None = None

    @property
    def name(self) -> str:
        """The model's name (keys the embedding cache); asked on first use, from a worker thread:
        a replica's constructor runs on its event loop, where a blocking call is refused."""
        if self._name is None:
            self._name = str(self.handle.model_name.remote().result(timeout_s=self.timeout_s))
        return self._name

    def encode_query(self, text: str) -> np.ndarray:
        return cast(np.ndarray, self.handle.encode_query.remote(text).result(timeout_s=self.timeout_s))

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return cast(np.ndarray, self.handle.encode.remote(list(texts)).result(timeout_s=self.timeout_s))


class NoResultCache:
    """The search result cache switched off: each ingress replica would keep its own, and a result
    computed by a shard that had not applied a write yet must not outlive the next query."""

    backend = "off"
    hits = 0
    misses = 0

    def generation(self) -> int:
        return -1

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        return None

    def put(self, key: tuple[Any, ...], value: dict[str, Any]) -> None:
        return None

    def invalidate(self) -> None:
        return None


def open_sharded_engine(
    settings: Settings, embedder: DeploymentHandle, *, shard_wait_s: float = 10.0
) -> Engine:
    """An engine over PostgreSQL whose media searches go to the current layout's shard replicas."""
    if settings.resolved_vector_backend != "pgvector":
        raise InvalidInput("serving on Ray needs a PostgreSQL database_url (the shared store of record)")
    remote = RemoteEmbedder(embedder)
    stores: list[Any] = []  # the engine's store, once the engine exists

    def read_layout() -> Layout | None:
        raw = stores[0].get_meta(LAYOUT_KEY)
        return Layout.from_json(raw) if raw else None

    router = ShardRouter(read_layout, _shard_handle, wait_s=shard_wait_s)

    def wrap(source: VectorCollection) -> VectorCollection:
        return ShardedMedia(cast(PgCollection, source), router)

    # The engine takes any Embedder; its attribute is typed as the local model it builds by default.
    engine = Engine(settings, embedder=cast(TextEmbedder, remote), wrap_media=wrap)
    stores.append(engine.store)
    engine.result_cache = NoResultCache()
    return engine


def _shard_handle(app: str) -> DeploymentHandle:
    return serve.get_deployment_handle(SHARD_DEPLOYMENT, app_name=app)


def build_app(settings: Settings, engine: Engine) -> ASGIApp:
    """The FastAPI app of `metamedia serve` on the sharded engine, with read-your-writes headers."""
    # deferred: the API package imports the web app and MCP; only the ingress needs them
    from ..api.app import create_app

    app = create_app(settings, engine=engine)
    app.add_middleware(ReadYourWrites)
    return app


class ReadYourWrites:
    """Pure ASGI: `X-Metamedia-Min-Seq` in → MIN_SEQ for the request; change number of the
    request's writes → `X-Metamedia-Seq` out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = _header(scope, MIN_SEQ_HEADER.encode())
        min_seq = 0
        if raw is not None:
            if not raw.isdigit() or len(raw) > 18:
                body = {"error": f"{MIN_SEQ_HEADER} must be a change number (digits), got {raw[:20]!r}"}
                await _reply(send, 422, body)
                return
            min_seq = int(raw)
        written: list[int] = []
        min_token, written_token = MIN_SEQ.set(min_seq), WRITTEN.set(written)

        async def send_with_seq(message: Message) -> None:
            if message["type"] == "http.response.start" and written:
                headers = list(message.get("headers", []))
                headers.append((SEQ_HEADER.encode(), str(max(written)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_seq)
        finally:
            MIN_SEQ.reset(min_token)
            WRITTEN.reset(written_token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
