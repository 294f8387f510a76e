"""Split-conformal prediction intervals for a regression output such as LVEF."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cmrclip.errors import ConfigError, DataError

__all__ = ["ConformalInterval", "empirical_coverage", "fit_conformal"]


@dataclass(frozen=True)
class ConformalInterval:
    """Symmetric interval ``pred ± half_width`` that covers the truth with probability >= ``1 - alpha``.

    The guarantee holds when the calibration and test studies are exchangeable (same population and model).
    """

    half_width: float
    alpha: float
    n_calibration: int

    def interval(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds for predictions ``pred``."""
        p = np.asarray(pred, dtype=np.float64)
        return p - self.half_width, p + self.half_width


def fit_conformal(pred: np.ndarray, true: np.ndarray, alpha: float = 0.1) -> ConformalInterval:
    """Fit split-conformal intervals from a calibration split's predictions and truths (unknown truths skipped).

    The half-width is the ``ceil((n + 1)(1 - alpha))``-th smallest absolute residual.

    Raises:
        ConfigError: if ``alpha`` is not in (0, 1).
        DataError: on NaN predictions, mismatched lengths, or too few calibration rows for this ``alpha``.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"conformal: alpha={alpha} must be in (0, 1), e.g. 0.1 for 90 % intervals")
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise DataError(f"conformal: {p.size} predictions but {t.size} true values")
    known = ~np.isnan(t)
    if np.isnan(p[known]).any():
        raise DataError("conformal: NaN predictions in the calibration split; fix the model output")
    residuals = np.sort(np.abs(p[known] - t[known]))
    n = residuals.size
    rank = math.ceil((n + 1) * (1 - alpha))
    if rank > n:
        need = math.ceil(1 / alpha) - 1
        raise DataError(f"conformal: {n} calibration rows are too few for alpha={alpha}; need at least {need}")
    return ConformalInterval(half_width=float(residuals[rank - 1]), alpha=alpha, n_calibration=n)


def empirical_coverage(lower: np.ndarray, upper: np.ndarray, true: np.ndarray) -> float:
    """Fraction of known truths inside ``[lower, upper]``.

    Raises:
        DataError: if no truth is known.
    """
    t = np.asarray(true, dtype=np.float64)
    known = ~np.isnan(t)
    if not known.any():
        raise DataError("coverage: no known true values")
    inside = (np.asarray(lower)[known] <= t[known]) & (t[known] <= np.asarray(upper)[known])
    return float(inside.mean())
