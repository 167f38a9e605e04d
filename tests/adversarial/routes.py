"""Every route the app serves, read from the app itself, with the access each one requires.

`POLICY` is the contract: a route missing from it fails the suite, so a new route cannot escape the
adversarial tests (add it here with its scope, and the matrix covers it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

OPEN, READ, WRITE, ADMIN = "open", "read", "write", "admin"

# (method, path template) -> the scope it needs. User routes ({user_id}) also need a bound key to match.
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): OPEN,
    ("GET", "/docs"): OPEN,
    ("GET", "/docs/oauth2-redirect"): OPEN,
    ("GET", "/redoc"): OPEN,
    ("GET", "/"): OPEN,
    ("GET", "/find"): OPEN,
    ("GET", "/profile"): OPEN,
    ("GET", "/dashboard"): OPEN,
    ("GET", "/title/{item_id}"): OPEN,
    ("GET", "/static/{name:path}"): OPEN,
    ("GET", "/models/{name:path}"): OPEN,  # the public model's files, for the offline web app
    ("GET", "/vendor/{name:path}"): OPEN,  # pinned browser libraries
    ("GET", "/sw.js"): OPEN,
    ("GET", "/catalog/index"): READ,
    ("GET", "/me"): READ,
    ("GET", "/users"): ADMIN,
    ("GET", "/users/{user_id}/interactions"): READ,
    ("DELETE", "/users/{user_id}/interactions/{interaction_id}"): WRITE,
    ("GET", "/users/{user_id}/preferences"): READ,
    ("PUT", "/users/{user_id}/preferences"): WRITE,
    ("GET", "/health"): OPEN,
    ("GET", "/ready"): OPEN,
    ("GET", "/search"): READ,
    ("GET", "/items/{item_id}"): READ,
    ("GET", "/items/{item_id}/similar"): READ,
    ("GET", "/stats"): READ,
    ("GET", "/events"): READ,
    ("POST", "/admin/items"): ADMIN,
    ("PUT", "/admin/items/{item_id}"): ADMIN,
    ("DELETE", "/admin/items/{item_id}"): ADMIN,
    ("POST", "/admin/ingest"): ADMIN,
    ("POST", "/admin/ingest/upload"): ADMIN,
    ("POST", "/admin/snapshot"): ADMIN,
    ("POST", "/admin/backup"): ADMIN,
    ("GET", "/admin/verify"): ADMIN,
    ("POST", "/admin/repair"): ADMIN,
    ("POST", "/admin/learn"): ADMIN,
    ("GET", "/metrics"): ADMIN,
    ("POST", "/users/{user_id}/interactions"): WRITE,
    ("GET", "/users/{user_id}/recommendations"): READ,
    ("GET", "/users/{user_id}/profile"): READ,
    ("POST", "/memory/strategies"): WRITE,
    ("GET", "/memory/strategies/search"): READ,
    ("POST", "/memory/strategies/{strategy_id}/outcome"): WRITE,
    ("POST", "/memory/strategies/{strategy_id}/evolve"): WRITE,
    ("GET", "/memory/strategies/{strategy_id}/history"): READ,
    ("POST", "/memory/episodes"): WRITE,
    ("GET", "/memory/episodes/search"): READ,
    ("POST", "/memory/episodes/{episode_id}/analyze"): WRITE,
    ("GET", "/memory/skills/search"): READ,
    ("GET", "/memory/causal/effects"): READ,
    ("GET", "/memory/causal/paths"): READ,
    ("GET", "/memory/causal/causes"): READ,
    ("GET", "/memory/learner/runs"): READ,
    ("GET", "/memory/{memory_id}/history"): READ,
    ("GET", "/bandit"): READ,
    ("POST", "/bandit/evaluate"): ADMIN,
    ("POST", "/collections"): WRITE,
    ("GET", "/collections"): READ,
    ("GET", "/collections/{name}"): READ,
    ("DELETE", "/collections/{name}"): WRITE,
    ("POST", "/collections/{name}/points"): WRITE,
    ("DELETE", "/collections/{name}/points"): WRITE,
    ("GET", "/collections/{name}/points/{point_id}"): READ,
    ("POST", "/collections/{name}/search"): READ,
    ("POST", "/collections/{name}/snapshot"): WRITE,
    ("GET", "/mcp"): READ,
    ("POST", "/mcp"): READ,
    ("DELETE", "/mcp"): READ,
}

# Values for path parameters: ids that do not exist (a 404 proves the caller got past auth) and a
# user other than the bound key's own.
PATH_VALUES = {
    "name:path": "no-such-file.js",
    "interaction_id": "987654321",
    "item_id": "987654321",
    "user_id": "bob",
    "strategy_id": "no-such-strategy",
    "episode_id": "no-such-episode",
    "memory_id": "no-such-memory",
    "name": "no-such-collection",
    "point_id": "1",
}
QUERY_VALUES: dict[str, dict[str, Any]] = {
    "/search": {"q": "space"},
    "/memory/strategies/search": {"q": "calm"},
    "/memory/episodes/search": {"q": "calm"},
    "/memory/skills/search": {"task": "recommend"},
    "/memory/causal/paths": {"outcome": "completion"},
    "/memory/causal/causes": {"event": "outcome"},
}


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI >= 0.165 keeps included routers as branches
            context = getattr(route, "include_context", None)
            yield from _walk(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
                yield method, prefix + route.path


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, included routers and mounts flattened."""
    found = set(_walk(app.routes))
    for path, operations in app.openapi()["paths"].items():  # the schema must agree with the walk
        for method in operations:
            found.add((method.upper(), path))
    return found


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path
