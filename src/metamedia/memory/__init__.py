"""Agent memory that changes what metamedia recommends.

ReasoningBank (strategies), ReflexionMemory (episodes and critiques), SkillLibrary, causal
effect estimation and the causal memory graph, the nightly learner, and the two recommender
hooks: MemoryReranker and CausalReranker. AgentMemory wires the stores onto one engine.
"""

from .audit import AuditEntry, AuditLog
from .base import Embedder, context_tags
from .causal import CausalEstimator, FeatureEffect, causal_weights, estimate_effects, top_features
from .graph import CausalGraph, CausalNode, CausalPath
from .interactions import Interaction, movielens_interactions
from .learner import LearnerConfig, LearnerReport, MoatMetrics, load_causal_weights, run_learner
from .reflexion import Episode, EpisodeDraft, ReflexionMemory
from .reranker import CausalReranker, MemoryReranker, RerankResult
from .rules import RULES, Candidate
from .schema import create_memory_tables, memory_metadata
from .seeds import SEED_STRATEGIES, seed_strategies
from .service import AgentMemory, FeedbackResult
from .simulator import simulate_interactions
from .skills import Skill, SkillLibrary
from .strategies import ReasoningBank, Strategy, StrategyMatch, StrategySpec
from .users import UserConstraint, UserMemory

__all__ = [
    "RULES",
    "SEED_STRATEGIES",
    "AgentMemory",
    "AuditEntry",
    "AuditLog",
    "Candidate",
    "CausalEstimator",
    "CausalGraph",
    "CausalNode",
    "CausalPath",
    "CausalReranker",
    "Embedder",
    "Episode",
    "EpisodeDraft",
    "FeatureEffect",
    "FeedbackResult",
    "Interaction",
    "LearnerConfig",
    "LearnerReport",
    "MemoryReranker",
    "MoatMetrics",
    "ReasoningBank",
    "ReflexionMemory",
    "RerankResult",
    "Skill",
    "SkillLibrary",
    "Strategy",
    "StrategyMatch",
    "StrategySpec",
    "UserConstraint",
    "UserMemory",
    "causal_weights",
    "context_tags",
    "create_memory_tables",
    "estimate_effects",
    "load_causal_weights",
    "memory_metadata",
    "movielens_interactions",
    "run_learner",
    "seed_strategies",
    "simulate_interactions",
    "top_features",
]
