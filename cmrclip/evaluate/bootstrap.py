"""Percentile bootstrap confidence intervals: stratified by class for binary metrics, plain for regression ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from cmrclip.errors import ConfigError, DataError
from cmrclip.evaluate.metrics import check_binary

__all__ = ["BootstrapCI", "bootstrap_ci", "stratified_bootstrap_ci"]

BinaryMetric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic on the full data with a percentile interval and the standard deviation over resamples."""

    estimate: float
    lower: float
    upper: float
    std: float
    n_boot: int

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)


def _summarise(estimate: float, samples: np.ndarray, alpha: float) -> BootstrapCI:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        raise DataError("bootstrap: every resample gave a non-finite statistic; the data are too small")
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return BootstrapCI(float(estimate), float(lo), float(hi), float(samples.std(ddof=1)), int(samples.size))


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 2:
        raise ConfigError(f"bootstrap: n_boot={n_boot}; use at least 2 (1000 or more for a 95 % interval)")
    if not 0 < alpha < 1:
        raise ConfigError(f"bootstrap: alpha={alpha} must be in (0, 1)")


def stratified_bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: BinaryMetric,
    rng: np.random.Generator,
    n_boot: int = 1000,
    alpha: float = 0.05,
) -> BootstrapCI:
    """Bootstrap a binary metric, resampling positives and negatives separately (class counts stay fixed).

    Args:
        labels: 0/1 truth (NaN = unknown, ignored).
        scores: scores, higher = positive.
        metric: ``metric(labels, scores) -> float``, e.g. :func:`cmrclip.evaluate.metrics.auroc`.
        rng: the seeded generator that draws the resamples.
        n_boot: number of resamples.
        alpha: the interval covers ``1 - alpha``.

    Raises:
        ConfigError: on a bad ``n_boot`` or ``alpha``.
        LabelError, DataError: see :func:`cmrclip.evaluate.metrics.check_binary`.
    """
    _check(n_boot, alpha)
    data = check_binary(labels, scores, name="bootstrap")
    pos = np.flatnonzero(data.labels)
    neg = np.flatnonzero(~data.labels)
    y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    samples = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        samples[b] = metric(y, data.scores[idx])
    return _summarise(metric(data.labels.astype(float), data.scores), samples, alpha)


def bootstrap_ci(
    statistic: Callable[..., float],
    arrays: tuple[np.ndarray, ...],
    rng: np.random.Generator,
    n_boot: int = 1000,
    alpha: float = 0.05,
) -> BootstrapCI:
    """Bootstrap ``statistic(*arrays)`` by resampling rows (the same rows of every array).

    Raises:
        ConfigError: on a bad ``n_boot`` or ``alpha``.
        DataError: if the arrays differ in length or are empty.
    """
    _check(n_boot, alpha)
    arrays = tuple(np.asarray(a) for a in arrays)
    n = arrays[0].shape[0]
    if n == 0 or any(a.shape[0] != n for a in arrays):
        raise DataError(f"bootstrap: arrays must be non-empty and of equal length, got {[a.shape[0] for a in arrays]}")
    samples = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        samples[b] = statistic(*(a[idx] for a in arrays))
    return _summarise(statistic(*arrays), samples, alpha)
