"""Contextual bandit over the recommendation algorithms: policy, decision log, OPE, splits, replay."""

from .context import BanditContext, ContextBucketer
from .ope import OPEEstimate, OPEReport, off_policy_report
from .policy import FixedArmPolicy, ThompsonPolicy, UniformPolicy
from .reward import Outcome, RewardWeights, composite_reward
from .service import BanditService, Decision
from .split import TrafficSplit

__all__ = [
    "BanditContext",
    "BanditService",
    "ContextBucketer",
    "Decision",
    "FixedArmPolicy",
    "OPEEstimate",
    "OPEReport",
    "Outcome",
    "RewardWeights",
    "ThompsonPolicy",
    "TrafficSplit",
    "UniformPolicy",
    "composite_reward",
    "off_policy_report",
]
