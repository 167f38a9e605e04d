"""Hostile bodies and parameters against every route that takes them: depth, size, non-finite and
absurd numbers, wrong types, unicode, injection-looking strings. Rejections change nothing."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from metamedia.jsonsafe import MAX_DEPTH

from .conftest import Server, assert_json_error, fingerprint
from .routes import POLICY, concrete

WRITES = sorted(r for r in POLICY if r[0] in ("POST", "PUT", "DELETE") and r[1] != "/admin/ingest/upload")
# Bodies no route may accept: refused at parse time (422) whatever the route, before any handler.
LIMIT_BREAKERS = {
    "deep-array": "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    "deep-object": '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
    "very-deep": "[" * 100_000 + "]" * 100_000,
    "nan": '{"x": NaN}',
    "infinity": '{"x": [1, Infinity]}',
    "minus-infinity": '{"x": {"y": -Infinity}}',
    "overflow": '{"x": 1e999}',
    "absurd": '{"x": -1e300}',
    "huge-int": '{"x": ' + "9" * 40 + "}",
}
WRONG_TYPES = ["[]", '"text"', "1", "null", "true", '{"title": ["not", "text"]}', '{"points": {}}']
NASTY = [
    "' OR '1'='1",
    "1; DROP TABLE items; --",
    '" UNION SELECT secret_sha256 FROM api_keys --',
    "../../../../etc/passwd",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "😀" * 50,
    "\x00nul",
    "{{7*7}}",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("route", WRITES, ids=lambda r: f"{r[0]} {r[1]}")
def test_bodies_breaking_json_limits_are_refused_everywhere(secure: Server, route: tuple[str, str]) -> None:
    method, template = route
    before = fingerprint(secure.engine)
    with secure.client("admin", **{"Content-Type": "application/json"}) as http:
        for name, body in LIMIT_BREAKERS.items():
            response = http.request(method, concrete(template), content=body)
            assert response.status_code == 422, (name, method, template, response.text[:200])
            assert "error" in response.json()
    assert fingerprint(secure.engine) == before


def test_oversized_bodies_are_refused(secure: Server) -> None:
    before = fingerprint(secure.engine)
    limit = secure.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    big = json.dumps({"title": "x" * (limit + 10), "task_type": "t"})
    with secure.client("admin") as http:
        assert_json_error(
            http.post("/memory/strategies", content=big, headers={"Content-Type": "application/json"}), 413
        )

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        try:
            streamed = http.post(
                "/memory/strategies", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert_json_error(streamed, 413)
        except httpx.HTTPError:
            pass  # the server may close the connection after answering 413
    assert fingerprint(secure.engine) == before


BODY_ROUTES = [
    ("POST", "/admin/items"), ("PUT", "/admin/items/{item_id}"), ("POST", "/admin/ingest"),
    ("POST", "/users/{user_id}/interactions"), ("POST", "/memory/strategies"),
    ("POST", "/memory/strategies/{strategy_id}/outcome"), ("POST", "/memory/strategies/{strategy_id}/evolve"),
    ("POST", "/memory/episodes"), ("POST", "/bandit/evaluate"), ("POST", "/collections"),
    ("POST", "/collections/{name}/points"), ("DELETE", "/collections/{name}/points"),
    ("POST", "/collections/{name}/search"),
]  # fmt: skip


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_wrong_types_are_refused(secure: Server, route: tuple[str, str]) -> None:
    method, template = route
    before = fingerprint(secure.engine)
    with secure.client("admin", **{"Content-Type": "application/json"}) as http:
        for body in WRONG_TYPES + ["", "{", '{"a": 1,}', "\xff\xfe"]:
            response = http.request(method, concrete(template), content=body.encode("utf-8", "surrogatepass"))
            assert_json_error(response, 404, 422)
    assert fingerprint(secure.engine) == before


def test_injection_and_unicode_strings_are_data_not_code(secure: Server) -> None:
    keys_before = fingerprint(secure.engine)["api_keys"]
    items_before = secure.engine.count()
    with secure.client("admin") as http:
        for i, nasty in enumerate(NASTY):
            for response in [
                http.get("/search", params={"q": nasty}),
                http.get("/search", params={"q": "war", "genre": nasty}),
                http.get(f"/users/{quote(nasty, safe='')}/profile"),
                http.get(f"/collections/{quote(nasty, safe='')}"),
                http.get("/memory/episodes/search", params={"q": nasty, "user_id": nasty}),
                http.get("/memory/causal/causes", params={"event": nasty}),
            ]:
                assert response.status_code < 500 and "error" in response.json() or response.status_code == 200, (
                    nasty, response.request.url, response.text[:200])  # fmt: skip
            title = f"{nasty} #{i}"
            stored = http.post("/memory/strategies", json={"title": title, "task_type": "probe"})
            if stored.status_code == 201:  # text is stored as text, byte for byte
                history = http.get(f"/memory/strategies/{stored.json()['id']}/history").json()
                assert history["strategy"]["title"] == title
            else:
                assert_json_error(stored, 422)
    assert fingerprint(secure.engine)["api_keys"] == keys_before
    assert secure.engine.count() == items_before
