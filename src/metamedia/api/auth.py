"""Who is calling, and may they: API-key authentication, scopes, user binding, rate limits.

Routes declare what they need with a dependency, e.g.::

    @router.get("/users/{user_id}/profile", dependencies=[Depends(require("read", user_param="user_id"))])

`require` answers 401 without a valid key, 403 outside the key's scopes or bound user, and 429 when
the key's rate limit is exhausted. A key bound to a user may read the catalog, but writes and admin
actions only through routes that name that user (`user_param`); anything else is 403.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import InvalidInput
from ..settings import Settings
from .keys import SCOPES, ApiKey, KeyStore
from .ratelimit import RateLimiter

log = logging.getLogger("metamedia.api.auth")

ENV_PREFIX = "METAMEDIA_"
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer mm_<id>_<secret>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (alternative header)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_mode(api: Settings, host: str) -> None:
    """Refuse to run without keys unless that was asked for explicitly and the bind is loopback."""
    if not api.auth_disabled:
        return
    if not is_loopback(host):
        raise InvalidInput(
            f"METAMEDIA_AUTH_DISABLED is only allowed when binding to loopback, not {host!r}",
        )
    log.warning("authentication is DISABLED (METAMEDIA_AUTH_DISABLED=1): every local caller has every scope")


@dataclass(frozen=True)
class Principal:
    """The caller of a request: its key (None when auth is off) and client address."""

    key: ApiKey | None
    client: str
    scopes: frozenset[str] = field(default=frozenset())

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def user_id(self) -> str | None:
        """The user this key is bound to, or None for an unbound key."""
        return self.key.user_id if self.key else None

    @property
    def rate_identifier(self) -> str:
        return f"key:{self.key.id}" if self.key else f"ip:{self.client}"

    def ensure_user(self, user_id: object) -> None:
        """403 unless this caller may act on `user_id` (for user ids carried in a body)."""
        if self.user_id is not None and str(user_id) != self.user_id:
            raise HTTPException(status_code=403, detail="this key is bound to another user")


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str | None:
    if bearer is not None and bearer.scheme.lower() == "bearer":
        return bearer.credentials
    return header_key


def _authenticate(request: Request, presented: str | None) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    api: Settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.limiter
    client = request.client.host if request.client else "unknown"
    if api.auth_disabled:
        principal = Principal(None, client, frozenset(SCOPES))
    else:
        keys: KeyStore = request.app.state.keys
        key = keys.verify(presented) if presented else None
        if key is None:
            # Failed attempts count per address, so guessing is throttled before it reaches the store.
            limiter.hit(client, namespace="unauthenticated")
            raise HTTPException(
                status_code=401,
                detail="missing or invalid API key" if presented else "an API key is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = Principal(key, client, key.granted)
    limiter.hit(principal.rate_identifier)
    request.state.principal = principal
    request.state.key_id = principal.key_id
    return principal


async def _authenticate_async(request: Request, presented: str | None) -> Principal:
    """`_authenticate` on the event loop when it cannot block (a key verified moments ago, limits
    counted in memory or the local SQLite file), else in a worker thread (database lookup, Redis):
    the common case skips a thread hop per request, and no request waits on the network in the loop."""
    limiter: RateLimiter = request.app.state.limiter
    if limiter.in_process and (
        request.app.state.settings.auth_disabled
        or (presented is not None and request.app.state.keys.cached(presented) is not None)
    ):
        return _authenticate(request, presented)
    return await run_in_threadpool(_authenticate, request, presented)


def authenticate_request(request: Request) -> Principal:
    """The caller of any request, from `Authorization: Bearer ...` or `X-API-Key` (401/429 like
    `require`); for endpoints outside FastAPI's dependency system, such as the MCP endpoint."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    bearer = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials.strip()) if credentials else None
    )
    return _authenticate(request, _presented_key(bearer, request.headers.get("x-api-key")))


def require(scope: str, user_param: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller must hold `scope`; with `user_param`, a bound key must match it.

    `user_param` names a path or query parameter carrying the user id.
    """
    if scope not in SCOPES:
        raise InvalidInput(f"unknown scope {scope!r}")

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header_key: str | None = Depends(_api_key_header),
    ) -> Principal:
        principal = await _authenticate_async(request, _presented_key(bearer, header_key))
        if scope not in principal.scopes:
            raise HTTPException(status_code=403, detail=f"this key lacks the {scope!r} scope")
        if principal.user_id is not None:
            if user_param is not None:
                value = request.path_params.get(user_param, request.query_params.get(user_param))
                if value is not None:
                    principal.ensure_user(value)
            elif scope != "read":
                raise HTTPException(
                    status_code=403, detail="a user-bound key may only write its own user's data"
                )
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_by_method(
    read_scope: str = "read", write_scope: str = "write", *, open_paths: Collection[str] = ()
) -> Callable[..., Awaitable[Principal | None]]:
    """For a whole router: `read_scope` for GET/HEAD, `write_scope` for other methods; `open_paths` need nothing."""
    for_read, for_write = require(read_scope), require(write_scope)

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header_key: str | None = Depends(_api_key_header),
    ) -> Principal | None:
        if request.url.path in open_paths:
            return None
        check = for_read if request.method in SAFE_METHODS else for_write
        return await check(request, bearer, header_key)

    return dependency
