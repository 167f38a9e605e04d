"""HTTP adapter of the bandit: GET /bandit (arms, posteriors, shares), POST /bandit/evaluate (OPE)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(tags=["bandit"])


class EvaluateRequest(BaseModel):
    """The candidate policy to evaluate off-policy on the logged, rewarded decisions."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["fixed", "uniform", "current"] = "current"
    arm: str | None = Field(default=None, max_length=64, description="The arm of a 'fixed' policy.")
    limit: int | None = Field(
        default=None, ge=2, le=10_000_000, description="Use only the latest N rewarded decisions."
    )


def _bandit(request: Request) -> Any:
    return request.app.state.engine.bandit


@router.get("/bandit")
def bandit_stats(request: Request) -> dict[str, Any]:
    """Arms, posterior means, selection shares and the policy version."""
    return dict(_bandit(request).stats())


@router.post("/bandit/evaluate")
def bandit_evaluate(request: Request, body: EvaluateRequest) -> dict[str, Any]:
    """IPS, self-normalised IPS and doubly robust estimates of a candidate policy's value."""
    spec = {"policy": body.policy, "arm": body.arm}
    return dict(_bandit(request).evaluate(spec, limit=body.limit))
