"""Request limits, declared once and used by the engine, the HTTP API, the CLI and the MCP server."""

from __future__ import annotations

from ..errors import InvalidInput

SEARCH_MAX_K = 1000  # ceiling of a search's k; the `max_k` setting may lower it
RECOMMEND_MAX_K = 100  # recommendations per request
MEMORY_MAX_K = 100  # strategies, episodes or skills per memory lookup


def check_k(k: object, limit: int) -> int:
    """`k` as an int in 1..limit, else InvalidInput (booleans are not numbers here)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
        raise InvalidInput(f"k must be an integer in 1..{limit}, got {k!r}")
    return k
