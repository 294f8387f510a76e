"""DeLong's variance of the AUROC, its confidence interval, and the paired and unpaired DeLong tests.

The structural components (DeLong et al., Biometrics 1988) are computed in O(n log n), as in Sun & Xu (IEEE SPL 2014),
but with two sorts and binary searches instead of three mid-rankings: for each positive, the fraction of negatives
scored below it (ties count 1/2), and for each negative, the fraction of positives scored above it. Scores are
oriented "higher = positive" and never flipped.

The unpaired test follows the form R's ``pROC::roc.test`` uses when two ROC curves are not on the same cases: a
t statistic with Welch-Satterthwaite degrees of freedom; the original system's published p-values were computed that
way for every condition where its two prediction tables did not have identical label vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from cmrclip.errors import DataError, LabelError
from cmrclip.evaluate.metrics import check_binary

__all__ = [
    "AucCI",
    "DelongTest",
    "delong_ci",
    "delong_covariance",
    "delong_paired_test",
    "delong_unpaired_test",
]


@dataclass(frozen=True)
class AucCI:
    """An AUROC with its DeLong variance and a normal-approximation interval clipped to [0, 1]."""

    auc: float
    variance: float
    lower: float
    upper: float
    n_positive: int
    n_negative: int

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class DelongTest:
    """Comparison of two AUROCs: ``difference = auc1 - auc2``, its statistic and two-sided p-value."""

    auc1: float
    auc2: float
    difference: float
    statistic: float
    p_value: float
    paired: bool
    df: float = float("inf")

    def as_dict(self) -> dict[str, float | bool]:
        """The fields as a plain dict."""
        return asdict(self)


def _components(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUROCs ``[k]`` and structural components ``v10 [k, m]`` (positives) and ``v01 [k, n]`` (negatives)."""
    pos, neg = scores[:, labels], scores[:, ~labels]
    m, n = pos.shape[1], neg.shape[1]
    v10, v01 = np.empty_like(pos), np.empty_like(neg)
    for k in range(scores.shape[0]):
        pos_sorted, neg_sorted = np.sort(pos[k]), np.sort(neg[k])
        below = np.searchsorted(neg_sorted, pos[k], "left") + np.searchsorted(neg_sorted, pos[k], "right")
        v10[k] = below / (2.0 * n)
        not_above = np.searchsorted(pos_sorted, neg[k], "left") + np.searchsorted(pos_sorted, neg[k], "right")
        v01[k] = 1.0 - not_above / (2.0 * m)
    return v10.mean(axis=1), v10, v01


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs and their DeLong covariance for ``k`` models scored on the same cases.

    Args:
        labels: ``[n]`` 0/1 truth (no unknowns).
        scores: ``[n]`` or ``[k, n]`` scores, higher = positive.

    Returns:
        ``(auc [k], covariance [k, k])``.

    Raises:
        LabelError, DataError: on invalid labels or scores (see :func:`check_binary`).
    """
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    y = np.asarray(labels, dtype=np.float64).ravel()
    if np.isnan(y).any():
        raise DataError("delong_covariance: labels contain unknowns (NaN); drop those rows first")
    for row in s:
        check_binary(y, row, name="delong")
    auc, v10, v01 = _components(y.astype(bool), s)
    m, n = v10.shape[1], v01.shape[1]
    if min(m, n) < 2:
        raise LabelError(f"DeLong variance needs at least 2 positives and 2 negatives; got {m} and {n}")
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return auc, cov


def delong_ci(labels: np.ndarray, scores: np.ndarray, alpha: float = 0.05) -> AucCI:
    """AUROC with its DeLong variance and ``1 - alpha`` confidence interval (clipped to [0, 1]).

    Unknown labels (NaN) are ignored.

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    data = check_binary(labels, scores, name="delong_ci")
    auc, cov = delong_covariance(data.labels, data.scores)
    var = float(cov[0, 0])
    half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(var)
    a = float(auc[0])
    return AucCI(
        auc=a,
        variance=var,
        lower=max(0.0, a - half),
        upper=min(1.0, a + half),
        n_positive=data.n_positive,
        n_negative=data.n_negative,
    )


def delong_paired_test(labels: np.ndarray, scores1: np.ndarray, scores2: np.ndarray) -> DelongTest:
    """Paired DeLong test of two models' AUROCs on the same cases (row ``i`` of both is the same study).

    Raises:
        LabelError, DataError: on invalid inputs, or if the score vectors differ in length.
    """
    s1 = np.asarray(scores1, dtype=np.float64).ravel()
    s2 = np.asarray(scores2, dtype=np.float64).ravel()
    if s1.shape != s2.shape:
        raise DataError(f"paired DeLong: {s1.size} vs {s2.size} scores; both models must score the same cases")
    y = np.asarray(labels, dtype=np.float64).ravel()
    known = ~np.isnan(y)
    auc, cov = delong_covariance(y[known], np.stack([s1[known], s2[known]]))
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    if var <= 0:
        z, p = (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    else:
        z = diff / np.sqrt(var)
        p = float(2 * stats.norm.sf(abs(z)))
    return DelongTest(
        auc1=float(auc[0]), auc2=float(auc[1]), difference=diff, statistic=float(z), p_value=p, paired=True
    )


def delong_unpaired_test(
    labels1: np.ndarray, scores1: np.ndarray, labels2: np.ndarray, scores2: np.ndarray
) -> DelongTest:
    """Unpaired DeLong test of two AUROCs on different cases: t statistic, Welch-Satterthwaite degrees of freedom.

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    first = delong_ci(labels1, scores1)
    second = delong_ci(labels2, scores2)
    n1 = first.n_positive + first.n_negative
    n2 = second.n_positive + second.n_negative
    v1, v2 = first.variance, second.variance
    diff = first.auc - second.auc
    if v1 + v2 <= 0:
        t, df = (0.0 if diff == 0 else float(np.sign(diff) * np.inf)), float(n1 + n2 - 2)
    else:
        t = diff / np.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    p = float(2 * stats.t.sf(abs(t), df))
    return DelongTest(
        auc1=first.auc, auc2=second.auc, difference=diff, statistic=float(t), p_value=p, paired=False, df=float(df)
    )
