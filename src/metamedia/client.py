"""A Python client over metamedia's HTTP API.

    with MetamediaClient("http://127.0.0.1:8000", api_key="mm_...") as mm:
        hits = mm.search("dark 90s thrillers", k=5)["results"]

Error answers raise `ApiError` subclasses carrying the status code and the server's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import MetamediaError


class ApiError(MetamediaError):
    """The server answered with an error status."""

    def __init__(
        self, status: int, message: str, detail: object | None = None, retry_after: float | None = None
    ):
        super().__init__(message, detail)
        self.status_code = status
        self.retry_after = retry_after


class Unauthorized(ApiError):
    """401: no key, or an invalid or revoked key."""


class Forbidden(ApiError):
    """403: the key lacks the scope or is bound to another user."""


class RateLimited(ApiError):
    """429: slow down; `retry_after` says for how many seconds."""


_BY_STATUS: dict[int, type[ApiError]] = {401: Unauthorized, 403: Forbidden, 429: RateLimited}


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event from /events."""

    id: str | None
    kind: str
    data: dict[str, Any]


class MetamediaClient:
    """Synchronous client; one connection pool per instance (use as a context manager)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        """`http` lets callers bring their own httpx.Client (e.g. FastAPI's TestClient in tests)."""
        self.auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MetamediaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs["headers"] = {**self.auth, **kwargs.get("headers", {})}
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    # ----- catalog ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")  # type: ignore[no-any-return]

    def ready(self) -> bool:
        return self.http.get("/ready").status_code == 200

    def search(self, q: str = "", k: int = 10, **filters: Any) -> dict[str, Any]:
        """GET /search; filters as in the API (genre=[...], year_min=..., type="movie", ...)."""
        params = {"q": q, "k": k, **{n: v for n, v in filters.items() if v is not None}}
        return self._call("GET", "/search", params=params)  # type: ignore[no-any-return]

    def get_item(self, item_id: int) -> dict[str, Any]:
        return self._call("GET", f"/items/{int(item_id)}")  # type: ignore[no-any-return]

    def similar(self, item_id: int, k: int = 10, **options: Any) -> dict[str, Any]:
        return self._call("GET", f"/items/{int(item_id)}/similar", params={"k": k, **options})  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")  # type: ignore[no-any-return]

    # ----- admin -----------------------------------------------------------------------------
    def create_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/admin/items", json=item)  # type: ignore[no-any-return]

    def update_item(self, item_id: int, item: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/admin/items/{int(item_id)}", json=item)  # type: ignore[no-any-return]

    def delete_item(self, item_id: int) -> dict[str, Any]:
        return self._call("DELETE", f"/admin/items/{int(item_id)}")  # type: ignore[no-any-return]

    def ingest_path(self, path: str) -> dict[str, Any]:
        """Ingest a file already in the server's ingest folder (relative path)."""
        return self._call("POST", "/admin/ingest", json={"path": path})  # type: ignore[no-any-return]

    def ingest_upload(self, content: bytes, name: str = "upload.jsonl") -> dict[str, Any]:
        """Upload a catalog (JSON Lines or CSV bytes) and ingest it."""
        headers = {"Content-Type": "application/x-ndjson"}
        return self._call(
            "POST", "/admin/ingest/upload", params={"name": name}, content=content, headers=headers
        )  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, Any]:
        return self._call("POST", "/admin/snapshot")  # type: ignore[no-any-return]

    def verify(self) -> dict[str, Any]:
        return self._call("GET", "/admin/verify")  # type: ignore[no-any-return]

    def repair(self) -> dict[str, Any]:
        return self._call("POST", "/admin/repair")  # type: ignore[no-any-return]

    def metrics(self) -> str:
        response = self.http.get("/metrics", headers=self.auth)
        if response.status_code >= 400:
            raise _error(response)
        return response.text

    # ----- events ----------------------------------------------------------------------------
    def events(
        self, last_event_id: str | None = None, kinds: list[str] | None = None, timeout: float | None = None
    ) -> Iterator[StreamEvent]:
        """Stream /events (blocking iterator); resumes after `last_event_id` when given."""
        headers = {**self.auth, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        params = {"kind": kinds} if kinds else {}
        with self.http.stream(
            "GET",
            "/events",
            headers=headers,
            params=params,
            timeout=httpx.Timeout(self.http.timeout.connect, read=timeout),
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            yield from _parse_sse(response.iter_lines())


def _parse_sse(lines: Iterator[str]) -> Iterator[StreamEvent]:
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                payload = json.loads("\n".join(data))
                yield StreamEvent(
                    event_id, kind, payload.get("data", payload) if kind != "reset" else payload
                )
            event_id, kind, data = None, "message", []
        elif line.startswith(":"):
            continue  # heartbeat comment
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "event":
                kind = value
            elif name == "data":
                data.append(value)


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        message, detail = str(body.get("error", response.reason_phrase)), body.get("detail")
    except (ValueError, AttributeError):
        message, detail = response.text[:500] or response.reason_phrase, None
    retry = response.headers.get("Retry-After")
    cls = _BY_STATUS.get(response.status_code, ApiError)
    return cls(response.status_code, message, detail, float(retry) if retry and retry.isdigit() else None)
