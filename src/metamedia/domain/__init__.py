"""The vocabulary every layer shares, defined once: request context and day parts, feedback kinds
and their rewards, request limits. Depends on nothing but `metamedia.errors`."""

from .context import DAYPARTS, RequestContext, daypart, is_weekend
from .feedback import OUTCOME_OF_KIND, outcome_reward
from .limits import MEMORY_MAX_K, RECOMMEND_MAX_K, SEARCH_MAX_K, check_k

__all__ = [
    "DAYPARTS",
    "MEMORY_MAX_K",
    "OUTCOME_OF_KIND",
    "RECOMMEND_MAX_K",
    "SEARCH_MAX_K",
    "RequestContext",
    "check_k",
    "daypart",
    "is_weekend",
    "outcome_reward",
]
