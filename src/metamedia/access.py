"""Which user's data a caller may reach: one set of rules for the HTTP routes and the MCP endpoint.

An unbound key (or the demo, with authentication off) reaches every user. A key bound to a user
reaches that user only: a read that names another user is Forbidden (403), a read that names nobody
is narrowed to the key's own user, and a memory that belongs to another user (an episode, a
constraint) is answered as if it did not exist (404). Shared memories (strategies, skills,
population effects) stay readable by every key with the `read` scope.
"""

from __future__ import annotations

from typing import Protocol

from .errors import Forbidden, NotFound


class Caller(Protocol):
    """Who is asking: the user its key is bound to, or None for an unbound key."""

    @property
    def user_id(self) -> str | None: ...


class OwnedMemories(Protocol):
    def memory_owner(self, memory_id: str) -> str | None: ...


def confine_user(caller: Caller, user_id: str | None) -> str | None:
    """The user id a read may use: any for an unbound key; a bound key's own (Forbidden for another)."""
    if caller.user_id is None:
        return user_id
    if user_id is not None and str(user_id) != caller.user_id:
        raise Forbidden("this key is bound to another user")
    return caller.user_id


def ensure_memory_visible(caller: Caller, memories: OwnedMemories, memory_id: str) -> None:
    """NotFound (as for an unknown id, so existence does not leak) when the memory is another user's."""
    if caller.user_id is None:
        return
    owner = memories.memory_owner(memory_id)
    if owner is not None and owner != caller.user_id:
        raise NotFound(f"no memory {memory_id!r}")
