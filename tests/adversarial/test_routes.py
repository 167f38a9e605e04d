"""Every route x every caller (no key, each scope, another user's bound key), auth on and auth off.

The route list comes from the app; each refusal must be the right status with our JSON error body
and must leave the store of record exactly as it was.
"""

from __future__ import annotations

import httpx
import pytest

from .conftest import Server, assert_json_error, fingerprint
from .routes import ADMIN, OPEN, POLICY, QUERY_VALUES, READ, WRITE, app_routes, concrete

GRANTS = {"read": {READ}, "write": {READ, WRITE}, "admin": {READ, WRITE, ADMIN}, "alice": {READ, WRITE}}
CALLERS = [None, "read", "write", "admin", "alice"]  # alice is bound to user alice; paths name bob
ALLOWED = 0


def expected(required: str, caller: str | None, template: str) -> int:
    """401 or 403 for a refusal, ALLOWED when the caller gets past authorisation."""
    if required == OPEN:
        return ALLOWED
    if caller is None:
        return 401
    if required not in GRANTS[caller]:
        return 403
    if caller == "alice" and ("{user_id}" in template or required != READ):
        return 403  # another user's route, or a write not addressed to alice
    return ALLOWED


def send(http: httpx.Client, method: str, template: str, **headers: str) -> httpx.Response:
    path = concrete(template)
    params = QUERY_VALUES.get(template)
    if template == "/events" or (template == "/mcp" and method == "GET"):
        with http.stream(
            method, path, params=params, headers=headers, timeout=httpx.Timeout(10, read=2)
        ) as r:
            r.read() if r.status_code != 200 else None
            return r
    if method == "GET":
        return http.get(path, params=params, headers=headers)
    if template == "/admin/ingest/upload":
        return http.post(path, content=b"", headers=headers)
    return http.request(method, path, params=params, json={}, headers=headers)


def test_every_served_route_has_a_policy(secure: Server, demo: Server) -> None:
    for server in (secure, demo):
        served = app_routes(server.app)
        assert served - set(POLICY) == set(), "routes without an access policy in tests/adversarial/routes.py"
        assert set(POLICY) - served == set(), "policies for routes the app no longer serves"


@pytest.mark.parametrize("route", sorted(POLICY), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_refuses_every_caller_without_the_right(secure: Server, route: tuple[str, str]) -> None:
    method, template = route
    required = POLICY[route]
    for caller in CALLERS:
        want = expected(required, caller, template)
        before = fingerprint(secure.engine) if want else None
        with secure.client(caller) as http:
            response = send(http, method, template)
        if want == ALLOWED:
            assert response.status_code not in (401, 403), (caller, method, template, response.text[:200])
            assert response.status_code < 500, (caller, method, template, response.text[:300])
            continue
        assert response.status_code == want, (
            caller,
            method,
            template,
            response.status_code,
            response.text[:200],
        )
        if template != "/events":
            assert "error" in response.json()
        assert fingerprint(secure.engine) == before, (caller, method, template)


@pytest.mark.parametrize("route", sorted(POLICY), ids=lambda r: f"{r[0]} {r[1]}")
def test_demo_serves_local_callers_and_refuses_foreign_pages(demo: Server, route: tuple[str, str]) -> None:
    method, template = route
    with httpx.Client(base_url=demo.url, timeout=30) as http:
        before = fingerprint(demo.engine)
        foreign = send(http, method, template, Origin="https://evil.example")
        assert_json_error(foreign, 403) if template != "/events" else None
        assert foreign.status_code == 403
        rebound = send(http, method, template, Host="evil.example")
        assert rebound.status_code == 421
        assert fingerprint(demo.engine) == before, (method, template)
        local = send(http, method, template)
        assert local.status_code not in (401, 403, 421), (method, template, local.text[:200])
        assert local.status_code < 500, (method, template, local.text[:300])
