"""Causal effects of ranking features on watch completion: IPW / AIPW with bootstrap intervals.

Each feature is treated in turn as a binary treatment T (non-binary columns are split at their
median); the other features and the confounders (e.g. item popularity) are the covariates Z.

  propensity  e(z) = P(T = 1 | z), a scikit-learn logistic regression, clipped to [clip, 1 - clip]
  IPW  (Hajek)  = sum(T y / e) / sum(T / e) - sum((1 - T) y / (1 - e)) / sum((1 - T) / (1 - e))
  AIPW          = mean(psi),  psi = m1(z) - m0(z) + T (y - m1(z)) / e - (1 - T)(y - m0(z)) / (1 - e)

with m1, m0 ridge regressions of y on z fitted within the treated and the untreated. Nuisance models
are cross-fitted over `folds` folds. The 95% interval is the 2.5-97.5 percentile range of the
estimate over `n_bootstrap` resamples of the rows with the nuisance fits held fixed (a fast,
influence-function bootstrap). confidence = the share of resamples whose estimate has the
estimate's sign. Per-user effects shrink toward the population effect by empirical Bayes:
  effect_u = pop + s2 / (s2 + v_u) * (raw_u - pop),  v_u = var(psi_u) / n_u,
  s2 = max(0, var(raw_u) - mean(v_u))  (between-user variance by the method of moments).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, InvalidInput

METHODS = ("aipw", "ipw", "naive")


def _sklearn() -> Any:
    """scikit-learn, imported on first use: it is an optional extra of metamedia."""
    try:
        # deferred: scikit-learn, an optional extra, slow to import
        import sklearn.linear_model
        import sklearn.model_selection
        import sklearn.preprocessing
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendUnavailable(
            "causal estimation needs scikit-learn: install metamedia[recommend]"
        ) from exc
    return sklearn


@dataclass(frozen=True)
class FeatureEffect:
    """Estimated effect of one feature on completion (difference in mean completion, T=1 vs T=0)."""

    feature: str
    effect: float
    ci_low: float
    ci_high: float
    confidence: float
    naive: float
    sample_size: int
    treated_share: float
    method: str

    @property
    def significant(self) -> bool:
        """True when the 95% interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0


def binarize(column: np.ndarray) -> np.ndarray:
    """0/1 columns stay as they are; any other column becomes 1 above its median."""
    values = np.unique(column)
    if np.all(np.isin(values, (0.0, 1.0))):
        return column.astype(np.float64)
    return (column > np.median(column)).astype(np.float64)


class CausalEstimator:
    """Fits the nuisance models once per feature and answers population and per-user questions."""

    def __init__(
        self,
        features: np.ndarray,
        outcome: np.ndarray,
        feature_names: Sequence[str],
        confounders: np.ndarray | None = None,
        *,
        method: str = "aipw",
        folds: int = 2,
        clip: float = 0.01,
        seed: int = 0,
    ) -> None:
        if method not in METHODS:
            raise InvalidInput(f"method must be one of {METHODS}, got {method!r}")
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(outcome, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise InvalidInput(f"features must be (n, p) and outcome (n,), got {x.shape} and {y.shape}")
        if x.shape[1] != len(feature_names):
            raise InvalidInput(f"{x.shape[1]} feature columns but {len(feature_names)} names")
        if x.shape[0] < 4 * folds:
            raise InvalidInput(f"need at least {4 * folds} rows to estimate effects, got {x.shape[0]}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise InvalidInput("features and outcome must be finite")
        z_extra = (
            np.zeros((x.shape[0], 0)) if confounders is None else np.asarray(confounders, dtype=np.float64)
        )
        if z_extra.ndim == 1:
            z_extra = z_extra[:, None]
        if z_extra.shape[0] != x.shape[0]:
            raise InvalidInput("confounders must have one row per outcome")
        self.feature_names = list(feature_names)
        self.method = method
        self.y = y
        self.n = y.shape[0]
        self.treatments = np.column_stack([binarize(x[:, j]) for j in range(x.shape[1])])
        self._rng = np.random.default_rng(seed)
        self.psi = np.zeros_like(self.treatments)
        self.naive = np.zeros(x.shape[1])
        self.propensity = np.zeros_like(self.treatments)
        self.usable = np.ones(x.shape[1], dtype=bool)
        splitter = _sklearn().model_selection.KFold(n_splits=folds, shuffle=True, random_state=seed)
        fold_ids = list(splitter.split(x))
        for j in range(x.shape[1]):
            t = self.treatments[:, j]
            if t.min() == t.max():
                self.usable[j] = False
                continue
            self.naive[j] = y[t == 1].mean() - y[t == 0].mean()
            covariates = np.column_stack([np.delete(self.treatments, j, axis=1), z_extra])
            self.psi[:, j], self.propensity[:, j] = self._pseudo_outcomes(covariates, t, y, fold_ids, clip)

    def _pseudo_outcomes(
        self,
        z: np.ndarray,
        t: np.ndarray,
        y: np.ndarray,
        fold_ids: list[tuple[np.ndarray, np.ndarray]],
        clip: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        psi = np.zeros(self.n)
        e_all = np.zeros(self.n)
        for train, test in fold_ids:
            sk = _sklearn()
            scaler = sk.preprocessing.StandardScaler().fit(z[train])
            z_train, z_test = scaler.transform(z[train]), scaler.transform(z[test])
            if np.unique(t[train]).size < 2:
                e = np.full(test.size, t[train].mean())
            else:
                model = sk.linear_model.LogisticRegression(max_iter=1000).fit(z_train, t[train])
                e = model.predict_proba(z_test)[:, 1]
            e = np.clip(e, clip, 1 - clip)
            e_all[test] = e
            tt, yt = t[test], y[test]
            if self.method == "aipw":
                m1 = self._outcome_model(z_train, y[train], t[train] == 1, z_test)
                m0 = self._outcome_model(z_train, y[train], t[train] == 0, z_test)
                psi[test] = m1 - m0 + tt * (yt - m1) / e - (1 - tt) * (yt - m0) / (1 - e)
            else:
                psi[test] = tt * yt / e - (1 - tt) * yt / (1 - e)
        return psi, e_all

    @staticmethod
    def _outcome_model(
        z_train: np.ndarray, y_train: np.ndarray, mask: np.ndarray, z_test: np.ndarray
    ) -> np.ndarray:
        if mask.sum() < 2:
            return np.full(z_test.shape[0], y_train[mask].mean() if mask.any() else y_train.mean())
        return _sklearn().linear_model.Ridge(alpha=1.0).fit(z_train[mask], y_train[mask]).predict(z_test)

    def _estimate(self, j: int, rows: np.ndarray) -> float:
        if self.method == "naive":
            t, y = self.treatments[rows, j], self.y[rows]
            if t.min() == t.max():
                return 0.0
            return float(y[t == 1].mean() - y[t == 0].mean())
        if self.method == "ipw":
            t, y, e = self.treatments[rows, j], self.y[rows], self.propensity[rows, j]
            w1, w0 = t / e, (1 - t) / (1 - e)
            if w1.sum() == 0 or w0.sum() == 0:
                return 0.0
            return float((w1 * y).sum() / w1.sum() - (w0 * y).sum() / w0.sum())
        return float(self.psi[rows, j].mean())

    def population(self, *, n_bootstrap: int = 400) -> list[FeatureEffect]:
        """Effects of every usable feature over all rows, with bootstrap 95% intervals."""
        all_rows = np.arange(self.n)
        usable = [j for j in range(len(self.feature_names)) if self.usable[j]]
        points = np.array([self._estimate(j, all_rows) for j in usable])
        boot = np.zeros((n_bootstrap, len(usable)))
        psi_usable = self.psi[:, usable]
        for b in range(n_bootstrap):
            rows = np.asarray(self._rng.integers(0, self.n, size=self.n))
            if self.method == "aipw":
                # Mean over the resample = counts-weighted mean, without copying the rows.
                boot[b] = np.bincount(rows, minlength=self.n) @ psi_usable / self.n
            else:
                boot[b] = [self._estimate(j, rows) for j in usable]
        out = []
        for col, j in enumerate(usable):
            point = float(points[col])
            if n_bootstrap > 0:
                low, high = np.percentile(boot[:, col], [2.5, 97.5])
                confidence = float(np.mean(np.sign(boot[:, col]) == np.sign(point))) if point != 0 else 0.5
            else:
                low = high = point
                confidence = 0.5
            out.append(
                FeatureEffect(
                    feature=self.feature_names[j],
                    effect=point,
                    ci_low=float(low),
                    ci_high=float(high),
                    confidence=confidence,
                    naive=float(self.naive[j]),
                    sample_size=self.n,
                    treated_share=float(self.treatments[:, j].mean()),
                    method=self.method,
                )  # fmt: skip
            )
        return out

    def per_user(
        self, user_ids: Sequence[str] | np.ndarray, *, min_rows: int = 10
    ) -> dict[str, dict[str, float]]:
        """Per-user effects shrunk toward the population effect (users with fewer than min_rows get it as is)."""
        users = np.asarray([str(u) for u in user_ids])
        if users.shape[0] != self.n:
            raise InvalidInput("user_ids must have one entry per row")
        order = np.argsort(users, kind="stable")
        uniq, starts = np.unique(users[order], return_index=True)
        groups = np.split(order, starts[1:])
        result: dict[str, dict[str, float]] = {str(u): {} for u in uniq}
        for j, name in enumerate(self.feature_names):
            if not self.usable[j]:
                continue
            pop = self._estimate(j, np.arange(self.n))
            raw, var, who = [], [], []
            for user, rows in zip(uniq, groups, strict=True):
                t = self.treatments[rows, j]
                if rows.size < min_rows or t.min() == t.max():
                    result[str(user)][name] = pop
                    continue
                values = self.psi[rows, j] if self.method != "naive" else None
                raw.append(self._estimate(j, rows))
                var.append(
                    float(np.var(values, ddof=1) / rows.size) if values is not None else 1.0 / rows.size
                )
                who.append(str(user))
            if not who:
                continue
            raw_arr, var_arr = np.array(raw), np.array(var)
            between = max(
                0.0, float(np.var(raw_arr, ddof=1) if raw_arr.size > 1 else 0.0) - float(var_arr.mean())
            )
            shrink = between / (between + var_arr) if between > 0 else np.zeros_like(var_arr)
            for user, r, s in zip(who, raw_arr, shrink, strict=True):
                result[user][name] = float(pop + s * (r - pop))
        return result


def estimate_effects(
    features: np.ndarray,
    outcome: np.ndarray,
    feature_names: Sequence[str],
    confounders: np.ndarray | None = None,
    *,
    method: str = "aipw",
    n_bootstrap: int = 400,
    seed: int = 0,
) -> list[FeatureEffect]:
    """Population effect of each feature on the outcome (see the module docstring for the estimators)."""
    estimator = CausalEstimator(features, outcome, feature_names, confounders, method=method, seed=seed)
    return estimator.population(n_bootstrap=n_bootstrap)


def top_features(
    effects: Sequence[FeatureEffect], k: int = 3, *, significant_only: bool = True
) -> list[FeatureEffect]:
    """The k features with the largest absolute effect (by default only those whose interval excludes 0)."""
    pool = [e for e in effects if e.significant or not significant_only]
    return sorted(pool, key=lambda e: -abs(e.effect))[:k]


def causal_weights(effects: Sequence[FeatureEffect], *, significant_only: bool = True) -> dict[str, float]:
    """Effects as re-ranker weights: {feature: effect}; features whose interval spans 0 get no weight."""
    return {e.feature: e.effect for e in effects if e.significant or not significant_only}
