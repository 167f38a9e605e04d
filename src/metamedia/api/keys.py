"""API keys: created and revoked from the CLI, stored hashed, checked in constant time.

A key reads ``mm_<key id>_<secret>``. The key id is public (it names the key in logs, metrics and
rate limits); only the SHA-256 of the secret is stored. A slow password hash (scrypt, PBKDF2) buys
nothing here: the secret is 32 random bytes, so brute-forcing a leaked hash is already hopeless,
and a fast hash keeps per-request verification cheap. Lookup is by key id, then the hashes are
compared with ``hmac.compare_digest`` so timing does not leak how much of a guess matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Column, Float, MetaData, String, Table, insert, select, update
from sqlalchemy.engine import Engine as SqlEngine

from ..errors import InvalidInput, NotFound
from ..store.migrations import upgrade_schema

SCOPES = ("read", "write", "admin")
# A wider scope includes the narrower ones: an admin key may also write and read.
SCOPE_INCLUDES: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "admin": frozenset({"read", "write", "admin"}),
}
KEY_PREFIX = "mm"
KEY_PATTERN = re.compile(r"^mm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# Anything shaped like a key, for scrubbing logs (the id alone is fine to log, the secret never).
KEY_LIKE = re.compile(r"mm_[0-9a-f]{12}_[A-Za-z0-9_-]{8,}")
MAX_USER_ID = 128

metadata = MetaData()
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", String(64), nullable=False),
    Column("user_id", String(MAX_USER_ID), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    user_id: str | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    granted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """True when one of the key's scopes includes `scope`."""
        return scope in self.granted

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "user_id": self.user_id,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _granted(scopes: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*(SCOPE_INCLUDES[s] for s in scopes))


def _row_to_key(m: object) -> ApiKey:
    row = dict(m)  # type: ignore[call-overload]
    scopes = tuple(s for s in row["scopes"].split(",") if s in SCOPES)
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=scopes,
        user_id=row["user_id"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        granted=_granted(scopes),
    )


def normalize_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Known scopes in canonical order; unknown or missing scopes raise InvalidInput."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scope(s) {', '.join(unknown)}; valid: {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidInput(f"a key needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in scopes)


# Keys verified recently, shared by every KeyStore of this process:
# (database url, key id) -> (valid until, monotonic; sha256 of the secret; the key).
_verified: dict[tuple[str, str], tuple[float, str, ApiKey]] = {}
_verified_lock = threading.Lock()


class KeyStore:
    """The `api_keys` table on the store's SQLAlchemy engine (portable SQL).

    `verify` remembers a key it found valid for `cache_seconds` (0 = ask the database every time),
    so the hot path does not query the store on every request. A revocation through any KeyStore of
    this process takes effect at once; one made by another process (the `metamedia keys revoke`
    CLI) within `cache_seconds`.
    """

    def __init__(self, engine: SqlEngine, *, cache_seconds: float = 0.0) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._url = engine.url.render_as_string(hide_password=True)
        upgrade_schema(engine)

    def _forget(self, key_id: str) -> None:
        with _verified_lock:
            _verified.pop((self._url, key_id), None)

    def create(
        self, scopes: list[str] | tuple[str, ...], *, user_id: str | None = None, name: str = ""
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it with its plaintext, which is never available again."""
        canonical = normalize_scopes(scopes)
        if user_id is not None and not (0 < len(user_id) <= MAX_USER_ID):
            raise InvalidInput(f"user id must be 1..{MAX_USER_ID} characters")
        if len(name) > 200:
            raise InvalidInput("key name must be at most 200 characters")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    secret_sha256=_hash(secret),
                    scopes=",".join(canonical),
                    user_id=user_id,
                    created_at=now,
                    revoked_at=None,
                )
            )
        key = ApiKey(key_id, name, canonical, user_id, now, None, _granted(canonical))
        return key, f"{KEY_PREFIX}_{key_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_row_to_key(r._mapping) for r in conn.execute(query)]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key; every later request with it fails. Revoking twice keeps the first time."""
        with self.engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where((api_keys.c.id == key_id) & api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        self._forget(key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}")
        return _row_to_key(row._mapping)

    def is_active(self, key_id: str) -> bool:
        """Whether the key exists and is not revoked, asked of the database (no cache)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys.c.revoked_at).where(api_keys.c.id == key_id)).first()
        return row is not None and row[0] is None

    def has_active_keys(self) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)).first()
                is not None
            )

    def cached(self, presented: str) -> ApiKey | None:
        """The key for `presented` if `verify` found it valid within `cache_seconds`, else None
        (unknown here: ask `verify`). Never touches the database."""
        match = KEY_PATTERN.match(presented)
        if match is None or self.cache_seconds <= 0:
            return None
        key_id, secret = match.groups()
        with _verified_lock:
            cached = _verified.get((self._url, key_id))
        if (
            cached is not None
            and cached[0] > time.monotonic()
            and hmac.compare_digest(_hash(secret), cached[1])
        ):
            return cached[2]
        return None

    def verify(self, presented: str) -> ApiKey | None:
        """The active key matching a presented plaintext, or None (malformed, unknown, wrong or revoked)."""
        match = KEY_PATTERN.match(presented)
        if match is None:
            return None
        key_id, secret = match.groups()
        digest = _hash(secret)
        if self.cache_seconds > 0:
            with _verified_lock:
                cached = _verified.get((self._url, key_id))
            if cached is not None and cached[0] > time.monotonic() and hmac.compare_digest(digest, cached[1]):
                return cached[2]
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            return None
        if not hmac.compare_digest(digest, row._mapping["secret_sha256"]):
            return None
        key = _row_to_key(row._mapping)
        if not key.active:
            self._forget(key_id)
            return None
        if self.cache_seconds > 0:
            with _verified_lock:
                _verified[(self._url, key_id)] = (time.monotonic() + self.cache_seconds, digest, key)
        return key
