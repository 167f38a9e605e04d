"""What the recommender needs from its neighbours, declared on its side (typing.Protocols).

`metamedia.bandit.BanditService` satisfies `AlgorithmPicker` and `metamedia.memory.AgentMemory`
satisfies `MemoryFeedback`; the engine hands them over, so this package imports neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..memory.reranker import RerankResult
from ..memory.rules import Candidate as MemoryCandidate
from ..memory.users import UserConstraint
from ..models import MediaItem


class ArmChoice(Protocol):
    """The bandit's pick for one request."""

    @property
    def id(self) -> str: ...
    @property
    def arm(self) -> str: ...
    @property
    def propensity(self) -> float: ...
    @property
    def exploring(self) -> bool: ...


class LoggedChoice(Protocol):
    """A decision as logged: what context it was made in and which items it served."""

    @property
    def id(self) -> str: ...
    @property
    def context(self) -> Mapping[str, Any]: ...
    @property
    def served_items(self) -> Sequence[int]: ...
    @property
    def user_id(self) -> str: ...
    @property
    def served_detail(self) -> Mapping[str, Any] | None: ...  # item id (text) -> score, strategy ids


class AlgorithmPicker(Protocol):
    """Chooses which algorithm (arm) serves an "auto" request and learns from the rewards."""

    def active_arms(self) -> list[str]: ...

    def choose(
        self,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        eligible_arms: Sequence[str] | None = None,
    ) -> ArmChoice: ...

    def attach_items(
        self, decision_id: str, served_items: Sequence[int], detail: dict[str, Any] | None = None
    ) -> None: ...

    def record_reward(self, decision_id: str, events: Iterable[Mapping[str, Any]]) -> float: ...

    def logged_decision(self, decision_id: str) -> LoggedChoice: ...


class MemoryReranker(Protocol):
    def rerank(
        self,
        user_id: str,
        candidates: list[MemoryCandidate],
        context: dict[str, Any],
        user_stats: dict[str, Any],
    ) -> RerankResult: ...


class UserConstraints(Protocol):
    """A user's constraints (blocked genres, runtime limit), set by the user or learned by memory."""

    def constraints(self, user_id: str, *, active_only: bool = True) -> list[UserConstraint]: ...


class MemoryFeedback(Protocol):
    """Agent memory as the recommender uses it: rerank a list, learn from skips and watches."""

    @property
    def reranker(self) -> MemoryReranker: ...

    @property
    def users(self) -> UserConstraints: ...

    def record_feedback(
        self,
        *,
        user_id: str,
        candidate: MemoryCandidate,
        action: str,
        completion: float,
        context: dict[str, Any],
        recommended: list[str] | None = None,
    ) -> Any: ...


class ItemSource(Protocol):
    """Catalog items by id (the search layer's per-process cache, emptied when the catalog generation moves)."""

    def get_items(self, item_ids: Sequence[int]) -> dict[int, MediaItem]: ...
