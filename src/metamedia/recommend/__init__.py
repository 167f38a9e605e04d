"""Recommendation algorithms, online preference learning and final re-ranking."""

from .als import ALSRecommender
from .base import Recommender, ScoringRecommender, top_k
from .content import ContentRecommender, PreferenceRecommender
from .ease import EASERecommender
from .graph import GraphFilterRecommender
from .hybrid import HybridRecommender, ScoreAdjuster, reciprocal_rank_fusion, weighted_fusion
from .itemknn import ItemKNNRecommender
from .popularity import PopularityRecommender
from .preference import PreferenceEvent, PreferenceVector
from .rerank import Candidate, Constraints, Explainer, HistoryItem, RankedItem, rerank
from .signals import Signal, SignalKind, signal_strength

__all__ = [
    "ALSRecommender",
    "Candidate",
    "Constraints",
    "ContentRecommender",
    "EASERecommender",
    "Explainer",
    "GraphFilterRecommender",
    "HistoryItem",
    "HybridRecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "PreferenceEvent",
    "PreferenceRecommender",
    "PreferenceVector",
    "RankedItem",
    "Recommender",
    "ScoreAdjuster",
    "ScoringRecommender",
    "Signal",
    "SignalKind",
    "reciprocal_rank_fusion",
    "rerank",
    "signal_strength",
    "top_k",
    "weighted_fusion",
]
