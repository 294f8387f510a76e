"""Binary and regression metrics on numpy arrays, with a fixed orientation: a higher score means "positive".

The original system's statistics (R ``pROC`` with ``direction="auto"``) let the data choose the direction, which turns
a worse-than-chance model into a better-than-chance AUROC. Here the direction never floats: an AUROC below 0.5 is
reported as such.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from cmrclip.errors import DataError, LabelError

__all__ = [
    "BinaryArrays",
    "RegressionMetrics",
    "RocCurve",
    "auprc",
    "auroc",
    "check_binary",
    "lvef_threshold_auroc",
    "regression_metrics",
    "roc_curve",
    "sens_spec",
    "youden_threshold",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinaryArrays:
    """Validated labels (bool) and scores (float64) of one binary target, unknown labels removed."""

    labels: np.ndarray
    scores: np.ndarray
    n_dropped_nan_scores: int = 0

    @property
    def n_positive(self) -> int:
        """Number of positive cases."""
        return int(self.labels.sum())

    @property
    def n_negative(self) -> int:
        """Number of negative cases."""
        return int(self.labels.size - self.labels.sum())


def check_binary(
    labels: np.ndarray, scores: np.ndarray, name: str = "label", drop_nan_scores: bool = False
) -> BinaryArrays:
    """Validate one binary target: labels 0/1 (NaN = unknown, removed), finite scores, both classes present.

    Args:
        labels: truth, 0/1 with NaN for unknown.
        scores: model scores, higher = more likely positive.
        name: the target's name, for error messages.
        drop_nan_scores: remove rows whose score is NaN (counted in ``n_dropped_nan_scores``) instead of raising.

    Raises:
        LabelError: if a label is neither 0, 1 nor NaN, or only one class is present.
        DataError: if the arrays differ in length, or a score is NaN (unless dropped) or infinite.
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise DataError(f"{name}: {y.size} labels but {s.size} scores; give one score per labelled row")
    known = ~np.isnan(y)
    bad = np.unique(y[known & (y != 0) & (y != 1)])
    if bad.size:
        raise LabelError(f"{name}: labels must be 0 or 1 (empty = unknown); found {bad[:5].tolist()}")
    y, s = y[known], s[known]
    nan = np.isnan(s)
    if nan.any() and not drop_nan_scores:
        raise DataError(f"{name}: {int(nan.sum())} labelled rows have a NaN score; fix the model output or drop them")
    y, s = y[~nan], s[~nan]
    if np.isinf(s).any():
        raise DataError(f"{name}: {int(np.isinf(s).sum())} scores are infinite; give finite scores or probabilities")
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        raise LabelError(f"{name}: only one class among {y.size} labelled rows ({n_pos} positive); AUROC is undefined")
    return BinaryArrays(labels=y.astype(bool), scores=s, n_dropped_nan_scores=int(nan.sum()))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count 1/2); higher score = positive, never flipped.

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    data = check_binary(labels, scores)
    ranks = stats.rankdata(data.scores)
    m, n = data.n_positive, data.n_negative
    return float((ranks[data.labels].sum() - m * (m + 1) / 2) / (m * n))


def _cumulative_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True/false positives when predicting positive for score >= each distinct score (descending)."""
    order = np.argsort(-scores)  # the order within ties does not matter: counts are read at the end of each tie
    s, y = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(y)[last_of_tie].astype(np.float64)
    fp = (last_of_tie + 1) - tp
    return tp, fp, s[last_of_tie]


@dataclass(frozen=True)
class RocCurve:
    """ROC points from (0, 0) to (1, 1); ``thresholds[i]`` gives ``(fpr[i], tpr[i])`` for ``score >= threshold``."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> RocCurve:
    """ROC curve at every distinct score (the first point, threshold +inf, is (0, 0)).

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    data = check_binary(labels, scores)
    tp, fp, thr = _cumulative_counts(data.labels, data.scores)
    tpr = np.r_[0.0, tp / data.n_positive]
    fpr = np.r_[0.0, fp / data.n_negative]
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=np.r_[np.inf, thr])


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall step) x precision, ties grouped.

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    data = check_binary(labels, scores)
    tp, fp, _ = _cumulative_counts(data.labels, data.scores)
    precision = tp / (tp + fp)
    recall = tp / data.n_positive
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def sens_spec(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when ``score >= threshold`` is called positive.

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    data = check_binary(labels, scores)
    called = data.scores >= threshold
    sens = float(called[data.labels].mean())
    spec = float((~called[~data.labels]).mean())
    return sens, spec


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold maximising sensitivity + specificity - 1 (the smallest such threshold's first hit).

    Raises:
        LabelError, DataError: see :func:`check_binary`.
    """
    curve = roc_curve(labels, scores)
    j = curve.tpr[1:] - curve.fpr[1:]
    return float(curve.thresholds[1:][int(np.argmax(j))])


@dataclass(frozen=True)
class RegressionMetrics:
    """Agreement of a continuous prediction with the truth; ``bias`` is mean(pred - true)."""

    n: int
    mae: float
    rmse: float
    bias: float
    pearson_r: float
    r2: float
    loa_lower: float
    loa_upper: float

    def as_dict(self) -> dict[str, float]:
        """The metrics as a plain dict."""
        return asdict(self)


def _finite_pairs(pred: np.ndarray, true: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise DataError(f"{name}: {p.size} predictions but {t.size} true values")
    known = ~np.isnan(t)
    p, t = p[known], t[known]
    if np.isnan(p).any():
        raise DataError(f"{name}: {int(np.isnan(p).sum())} predictions are NaN where the truth is known")
    if p.size < 3:
        raise DataError(f"{name}: {p.size} rows with a known truth; need at least 3 for regression metrics")
    return p, t


def regression_metrics(pred: np.ndarray, true: np.ndarray, name: str = "lvef") -> RegressionMetrics:
    """MAE, RMSE, bias, Pearson r, R² and Bland-Altman 95 % limits of agreement (rows with unknown truth skipped).

    Raises:
        DataError: on mismatched lengths, NaN predictions where the truth is known, or fewer than 3 rows.
    """
    p, t = _finite_pairs(pred, true, name)
    diff = p - t
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    constant = np.ptp(p) == 0 or np.ptp(t) == 0
    r = float("nan") if constant else float(np.corrcoef(p, t)[0, 1])
    if constant:
        logger.warning("%s: predictions or truth are constant; Pearson r is undefined", name)
    ss_tot = float(((t - t.mean()) ** 2).sum())
    r2 = 1.0 - float((diff**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return RegressionMetrics(
        n=int(p.size),
        mae=float(np.abs(diff).mean()),
        rmse=float(np.sqrt((diff**2).mean())),
        bias=bias,
        pearson_r=r,
        r2=r2,
        loa_lower=bias - 1.959963984540054 * sd,
        loa_upper=bias + 1.959963984540054 * sd,
    )


def lvef_threshold_auroc(pred: np.ndarray, true: np.ndarray, cutoff: float) -> float:
    """AUROC of the predicted LVEF for "true LVEF < cutoff" (a lower prediction = more likely positive).

    Raises:
        DataError, LabelError: if the truth has no rows on one side of the cutoff.
    """
    p, t = _finite_pairs(pred, true, f"lvef<{cutoff:g}")
    return auroc((t < cutoff).astype(float), -p)
