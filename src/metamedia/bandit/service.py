"""BanditService: picks the recommendation algorithm per request, logs it, joins late rewards.

All state lives in the store of record, so a restarted service (or a second process on the
same database) continues where the last one stopped. A request reads the arms and posterior
counts from a snapshot at most ``refresh_seconds`` old (this process's own writes renew it at
once; Thompson sampling on a second-old posterior is the usual batched update), and its decision
row is queued for the DecisionWriter, which writes the queue in one transaction every 50 ms and
before anything reads the log (rewards, stats, evaluation) or the service closes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select

from ..errors import Conflict, InvalidInput, NotFound
from ..recommend.registry import BANDIT_ARMS
from .context import BanditContext, ContextBucketer
from .guard import GuardSettings, guarded_probabilities, judge
from .log import (
    add_counts,
    arms_table,
    create_tables,
    decisions_table,
    get_meta,
    load_posteriors,
    outcomes_table,
    rewarded_decisions,
    selection_counts,
    set_meta,
    stats_table,
)
from .ope import LoggedDecision, off_policy_report
from .policy import CandidatePolicy, FixedArmPolicy, ThompsonPolicy, UniformPolicy, warm_start_prior
from .reward import Outcome, RewardWeights, composite_reward
from .split import TrafficSplit, compare_variants
from .writer import FLUSH_INTERVAL_S, DecisionWriter

log = logging.getLogger("metamedia.bandit")

DEFAULT_ARMS = BANDIT_ARMS
CONTROL = "control"
EXPLORATION_WINDOW = 5000  # recent decisions the reported exploration share is measured over
REFRESH_SECONDS = 1.0  # how old the posterior snapshot a request samples from may be
PEER_POLL_S = 0.02  # how often a lookup re-reads the log while another process may still be writing
PEER_WAIT_S = 10 * FLUSH_INTERVAL_S  # how long it waits: several of that writer's flush intervals


@dataclass
class _Snapshot:
    """Arms, posterior counts and policy version as read at ``read_at`` (monotonic seconds)."""

    read_at: float
    known: set[str]
    active: list[str]
    table: Any  # PosteriorTable
    version: str
    verdicts: dict[tuple[str, ...], tuple[Any, dict[str, Any]]]  # eligible arms -> (GuardVerdict, its dict)


@dataclass(frozen=True)
class Decision:
    """Which arm serves a request, with the exact probability it had of being chosen."""

    id: str
    arm: str
    propensity: float
    probabilities: dict[str, float]
    policy_version: str
    bucket: str
    variant: str
    guard: dict[str, Any] | None = None  # GuardVerdict.to_dict() of this decision (None: a variant policy)
    exploring: bool = False  # the arm is not the guard's incumbent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServedDecision:
    """A logged decision as the recommender reads it back when an interaction names it."""

    id: str
    arm: str
    context: dict[str, Any]
    served_items: list[int]
    user_id: str = ""
    served_detail: dict[str, Any] | None = None  # item id (text) -> {"score", "strategy_ids"}


class BanditService:
    """Thompson sampling over recommendation algorithms, persisted in ``engine``'s database."""

    def __init__(
        self,
        engine: Engine,
        arms: Sequence[str] = DEFAULT_ARMS,
        *,
        bucketer: ContextBucketer | None = None,
        weights: RewardWeights | None = None,
        min_exploration: float = 0.05,
        prior_strength: float = 4.0,
        mc_draws: int = 1000,
        seed: int | None = None,
        split: TrafficSplit | None = None,
        variant_policies: Mapping[str, CandidatePolicy] | None = None,
        guard: GuardSettings | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
        peer_wait_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        # Several server processes: a decision logged by another process reaches the log within its
        # writer's flush interval, so a reward or lookup that finds nothing waits up to this long.
        self.peer_wait_s = peer_wait_s
        self.writer = DecisionWriter(engine)
        self._snapshot: _Snapshot | None = None
        self._snapshot_lock = threading.Lock()
        self.bucketer = bucketer or ContextBucketer()
        self.weights = weights or RewardWeights()
        self.policy = ThompsonPolicy(
            min_exploration=min_exploration, prior_strength=prior_strength, mc_draws=mc_draws, seed=seed or 0
        )
        self.rng = np.random.default_rng(seed)
        self.split = split
        self.variant_policies = dict(variant_policies or {})
        self.guard = guard or GuardSettings()
        create_tables(engine)
        with engine.begin() as conn:
            known = set(conn.execute(select(arms_table.c.name)).scalars())
            for name in arms:
                if not known or (name == self.guard.default_arm and name not in known):
                    self._insert_arm(conn, name, (1.0, 1.0))  # the served default joins older logs

    def forget_history(self) -> None:
        """Delete every logged decision, outcome and per-context statistic (the arms stay).

        Used by the served-path replay on its scratch copy of a store, never on a live one."""
        self.flush()
        with self.engine.begin() as conn:
            for table in (outcomes_table, decisions_table, stats_table):
                conn.execute(table.delete())
        self._snapshot = None

    def flush(self) -> None:
        """Write the queued decisions now (readers of the log call this first)."""
        self.writer.flush()

    def close(self) -> None:
        """Write the queued decisions and stop the writer thread."""
        self.writer.close()

    def _state(self) -> _Snapshot:
        """The arms and posteriors snapshot, re-read when older than ``refresh_seconds``."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.read_at < self.refresh_seconds:
            return snap
        with self._snapshot_lock:
            snap = self._snapshot
            if snap is None or time.monotonic() - snap.read_at >= self.refresh_seconds:
                with self.engine.connect() as conn:
                    snap = _Snapshot(
                        read_at=time.monotonic(),
                        known={r.name for r in conn.execute(select(arms_table.c.name))},
                        active=self.active_arms(conn),
                        table=load_posteriors(conn),
                        version=self._policy_version(conn),
                        verdicts={},
                    )
                self._snapshot = snap
            return snap

    # -- arms ---------------------------------------------------------------------------

    def _insert_arm(self, conn: Connection, name: str, prior: tuple[float, float]) -> None:
        conn.execute(
            arms_table.insert().values(
                name=name,
                active=True,
                prior_successes=prior[0],
                prior_failures=prior[1],
                added_at=time.time(),
            )
        )

    def _bump_version(self, conn: Connection) -> None:
        set_meta(conn, "version", str(int(get_meta(conn, "version", "1")) + 1))

    def _policy_version(self, conn: Connection) -> str:
        features = "+".join(self.bucketer.features) or "global"
        return f"thompson[{features}]/v{get_meta(conn, 'version', '1')}"

    def active_arms(self, conn: Connection | None = None) -> list[str]:
        """The active arms (without ``conn``: from the snapshot a request samples from)."""
        if conn is None:
            return list(self._state().active)
        rows = conn.execute(
            select(arms_table.c.name).where(arms_table.c.active.is_(True)).order_by(arms_table.c.name)
        )
        return [r.name for r in rows]

    def add_arm(self, name: str, *, warm_start: bool = True) -> dict[str, Any]:
        """Register (or re-activate) an arm; a new arm's prior is the incumbents' mean reward."""
        name = name.strip()
        if not name:
            raise InvalidInput("arm name must not be empty")
        with self.engine.begin() as conn:
            row = conn.execute(select(arms_table).where(arms_table.c.name == name)).first()
            if row is not None and row.active:
                raise Conflict(f"arm {name!r} is already active")
            if row is not None:
                conn.execute(arms_table.update().where(arms_table.c.name == name).values(active=True))
            else:
                table = load_posteriors(conn)
                prior = warm_start_prior(table, self.active_arms(conn)) if warm_start else (1.0, 1.0)
                self._insert_arm(conn, name, prior)
            self._bump_version(conn)
            self._snapshot = None
            return {"arm": name, "policy_version": self._policy_version(conn)}

    def remove_arm(self, name: str) -> dict[str, Any]:
        """Stop choosing an arm; its history and pending rewards are kept (it can be re-added)."""
        with self.engine.begin() as conn:
            active = self.active_arms(conn)
            if name not in active:
                raise NotFound(f"no active arm {name!r}")
            if len(active) == 1:
                raise Conflict("cannot remove the last active arm")
            conn.execute(arms_table.update().where(arms_table.c.name == name).values(active=False))
            self._bump_version(conn)
            self._snapshot = None
            return {"arm": name, "policy_version": self._policy_version(conn)}

    # -- decisions and rewards ----------------------------------------------------------

    def variant(self, user_id: str | int) -> str:
        return self.split.variant(user_id) if self.split else CONTROL

    def choose(
        self,
        user_id: str | int,
        context: BanditContext | Mapping[str, Any] | None = None,
        eligible_arms: Sequence[str] | None = None,
        *,
        served_items: Sequence[int] | None = None,
    ) -> Decision:
        """Pick an arm for this request and log the decision with its exact propensity.

        ``eligible_arms`` (default: every active arm) may name removed arms, which are skipped;
        arms never registered are an error.
        """
        ctx = context if isinstance(context, BanditContext) else BanditContext.from_mapping(context)
        bucket = self.bucketer.bucket(ctx)
        variant = self.variant(user_id)
        snap = self._state()
        active = snap.active
        if eligible_arms is None:
            arms = active
        else:
            unknown = [a for a in eligible_arms if a not in snap.known]
            if unknown:
                raise InvalidInput(f"unknown arm(s): {', '.join(unknown)}")
            arms = [a for a in dict.fromkeys(eligible_arms) if a in active]
        if not arms:
            raise InvalidInput("none of the eligible arms is active")
        verdict, verdict_dict = None, {}
        if variant in self.variant_policies:
            probabilities = self.variant_policies[variant].probabilities(bucket, arms)
        else:
            with self._snapshot_lock:  # the policy samples from the snapshot's table
                self.policy.table = snap.table
                judged = snap.verdicts.get(tuple(arms))
                if judged is None:
                    fresh = judge(snap.table, arms, self.guard)
                    judged = snap.verdicts[tuple(arms)] = (fresh, fresh.to_dict())
                verdict, verdict_dict = judged
                probabilities = guarded_probabilities(self.policy, bucket, arms, verdict, self.guard, self.rng)
        index = int(self.rng.choice(len(arms), p=probabilities))
        decision = Decision(
            id=uuid.uuid4().hex,
            arm=arms[index],
            propensity=float(probabilities[index]),
            probabilities={a: float(p) for a, p in zip(arms, probabilities, strict=True)},
            policy_version=snap.version if variant not in self.variant_policies else variant,
            bucket=bucket,
            variant=variant,
            guard=dict(verdict_dict) if verdict else None,
            exploring=verdict is not None and arms[index] != verdict.incumbent,
        )
        if decision.exploring:
            log.info(
                "bandit explores %s (p=%.4f; incumbent %s, safe %s, guarded %s)", decision.arm,
                decision.propensity, verdict.incumbent if verdict else "", list(verdict.safe if verdict else ()),
                list(verdict.guarded if verdict else ()),
            )  # fmt: skip
        self.writer.add(
            {
                "id": decision.id,
                "created_at": time.time(),
                "user_id": str(user_id),
                "variant": variant,
                "policy_version": decision.policy_version,
                "context": ctx.to_dict(),
                "bucket": bucket,
                "eligible_arms": arms,
                "probabilities": decision.probabilities,
                "arm": decision.arm,
                "propensity": decision.propensity,
                "served_items": [int(i) for i in served_items or ()],
                "served_detail": None,
                "reward": None,
                "rewarded_at": None,
            }
        )
        return decision

    def logged_decision(self, decision_id: str) -> ServedDecision:
        """The logged decision `decision_id` (NotFound when there is none)."""
        self.flush()
        self._await_decision(str(decision_id))
        with self.engine.connect() as conn:
            row = conn.execute(
                select(decisions_table).where(decisions_table.c.id == str(decision_id))
            ).first()
        if row is None:
            raise NotFound(f"no recommendation decision {decision_id!r}", {"decision_id": decision_id})
        served = [int(i) for i in row.served_items or ()]
        detail = dict(row.served_detail) if row.served_detail else None
        return ServedDecision(row.id, row.arm, dict(row.context or {}), served, str(row.user_id), detail)

    def _await_decision(self, decision_id: str) -> None:
        """With `peer_wait_s` set: wait (polling) until another process's writer has logged the
        decision, or the wait is over. A decision this process logged is already written (`flush`)."""
        if self.peer_wait_s <= 0:
            return
        deadline = time.monotonic() + self.peer_wait_s
        query = select(decisions_table.c.id).where(decisions_table.c.id == decision_id)
        while True:
            with self.engine.connect() as conn:
                if conn.execute(query).first() is not None:
                    return
            if time.monotonic() >= deadline:
                return
            time.sleep(min(PEER_POLL_S, max(0.0, deadline - time.monotonic())))

    def attach_items(
        self, decision_id: str, served_items: Sequence[int], detail: dict[str, Any] | None = None
    ) -> None:
        """Record the items the chosen arm served (known only after it ran), with each one's detail
        (score, memory strategies) when given."""
        if self.writer.amend_items(decision_id, served_items, detail):
            return  # still queued: written with its items
        with self.engine.begin() as conn:
            done = conn.execute(
                decisions_table.update()
                .where(decisions_table.c.id == decision_id)
                .values(served_items=[int(i) for i in served_items], served_detail=detail)
            )
            if done.rowcount == 0:
                raise NotFound(f"no bandit decision {decision_id!r}")

    def record_reward(self, decision_id: str, events: Iterable[Outcome | Mapping[str, Any]]) -> float:
        """Join outcome events to their decision, however late; returns the decision's reward now.

        The reward is recomputed from all events joined so far, and the posterior receives
        only the change, so a click followed an hour later by a watch counts once, in full.
        """
        outcomes = [e if isinstance(e, Outcome) else Outcome.from_mapping(e) for e in events]
        now = time.time()
        self.flush()
        self._await_decision(decision_id)
        with self.engine.begin() as conn:
            row = conn.execute(select(decisions_table).where(decisions_table.c.id == decision_id)).first()
            if row is None:
                raise NotFound(f"no bandit decision {decision_id!r}")
            for outcome in outcomes:
                conn.execute(
                    outcomes_table.insert().values(
                        decision_id=decision_id, kind=outcome.kind, value=outcome.value, created_at=now
                    )
                )
            joined = conn.execute(
                select(outcomes_table.c.kind, outcomes_table.c.value).where(
                    outcomes_table.c.decision_id == decision_id
                )
            )
            reward = composite_reward((Outcome(k, v) for k, v in joined), self.weights)
            self._apply_reward(conn, row, reward, now)
        self._snapshot = None
        return reward

    def _apply_reward(self, conn: Connection, row: Any, reward: float, now: float) -> None:
        previous = row.reward
        if row.policy_version == row.variant:
            pass  # a candidate variant's decisions do not train the production posterior
        elif previous is None:
            add_counts(conn, row.bucket, row.arm, reward, 1.0 - reward, 1)
        else:
            add_counts(conn, row.bucket, row.arm, reward - previous, previous - reward, 0)
        conn.execute(
            decisions_table.update()
            .where(decisions_table.c.id == row.id)
            .values(reward=reward, rewarded_at=now)
        )

    def expire_pending(self, older_than_seconds: float) -> int:
        """Give reward 0 to decisions older than this that never received an event; returns how many."""
        cutoff = time.time() - older_than_seconds
        self.flush()
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(decisions_table).where(
                    decisions_table.c.reward.is_(None), decisions_table.c.created_at < cutoff
                )
            ).all()
            for row in rows:
                self._apply_reward(conn, row, 0.0, time.time())
        self._snapshot = None
        return len(rows)

    # -- reporting ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Arms with posterior means, selection shares and pulls, and the policy version."""
        self.flush()
        with self.engine.connect() as conn:
            table = load_posteriors(conn)
            counts = selection_counts(conn)
            rewarded = conn.execute(
                select(func.count()).select_from(decisions_table).where(decisions_table.c.reward.is_not(None))
            ).scalar()
            rows = conn.execute(select(arms_table).order_by(arms_table.c.name)).all()
            version = self._policy_version(conn)
            recent = conn.execute(
                select(decisions_table.c.arm, decisions_table.c.probabilities)
                .order_by(decisions_table.c.created_at.desc())
                .limit(EXPLORATION_WINDOW)
            ).all()
        total = sum(counts.values())
        active = [r.name for r in rows if r.active]
        verdict = judge(table, active, self.guard) if active else None
        explored = [arm != max(p, key=p.get) for arm, p in recent if p]
        return {
            "policy_version": version,
            "bucket_features": list(self.bucketer.features),
            "min_exploration": self.policy.min_exploration,
            "guard": {**asdict(self.guard), "now": verdict.to_dict() if verdict else None},
            "exploration_share": sum(explored) / len(explored) if explored else 0.0,
            "exploration_window": len(explored),
            "decisions": total,
            "rewarded": int(rewarded or 0),
            "arms": [
                {
                    "name": r.name,
                    "active": bool(r.active),
                    "posterior_mean": table.mean(r.name),
                    "rewarded_pulls": table.total(r.name).pulls,
                    "selections": counts.get(r.name, 0),
                    "selection_share": counts.get(r.name, 0) / total if total else 0.0,
                }
                for r in rows
            ],
        }

    def logged_decisions(
        self, *, policy_version: str | None = None, limit: int | None = None
    ) -> list[LoggedDecision]:
        self.flush()
        with self.engine.connect() as conn:
            rows = rewarded_decisions(conn, policy_version=policy_version, limit=limit)
        return [
            LoggedDecision(r.bucket, tuple(r.eligible_arms), r.arm, float(r.propensity), float(r.reward))
            for r in rows
        ]

    def evaluate(
        self, candidate: CandidatePolicy | Mapping[str, Any], *, limit: int | None = None
    ) -> dict[str, Any]:
        """Off-policy (IPS, SNIPS, DR) estimate of ``candidate``'s value from the rewarded log."""
        policy = candidate if not isinstance(candidate, Mapping) else self.policy_from_spec(candidate)
        return off_policy_report(self.logged_decisions(limit=limit), policy).to_dict()

    def policy_from_spec(self, spec: Mapping[str, Any]) -> CandidatePolicy:
        """``{"policy": "fixed", "arm": NAME}``, ``{"policy": "uniform"}`` or ``{"policy": "current"}``."""
        kind = str(spec.get("policy", ""))
        if kind == "fixed":
            arm = spec.get("arm")
            with self.engine.connect() as conn:
                known = {r.name for r in conn.execute(select(arms_table.c.name))}
            if arm not in known:
                raise InvalidInput(f"fixed policy needs a known 'arm', got {arm!r}")
            return FixedArmPolicy(str(arm))
        if kind == "uniform":
            return UniformPolicy()
        if kind == "current":
            with self.engine.connect() as conn:
                table = load_posteriors(conn)
            return ThompsonPolicy(
                table,
                min_exploration=self.policy.min_exploration,
                prior_strength=self.policy.prior_strength,
                mc_draws=self.policy.mc_draws,
                seed=self.policy.seed,
                name="current",
            )
        raise InvalidInput(f"unknown policy {kind!r}; expected 'fixed', 'uniform' or 'current'")

    def ab_report(self, control: str = CONTROL) -> dict[str, Any]:
        """Rewards per traffic-split variant compared with the control (Welch t-test)."""
        self.flush()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(decisions_table.c.variant, decisions_table.c.reward).where(
                    decisions_table.c.reward.is_not(None)
                )
            ).all()
        rewards: dict[str, list[float]] = {}
        for variant, reward in rows:
            rewards.setdefault(variant, []).append(float(reward))
        return compare_variants(rewards, control)
