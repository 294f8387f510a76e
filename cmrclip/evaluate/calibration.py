"""Probability calibration: expected calibration error, reliability curve, temperature and Platt scaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from cmrclip.errors import ConfigError, DataError
from cmrclip.evaluate.metrics import check_binary

__all__ = [
    "PlattScaler",
    "ReliabilityCurve",
    "TemperatureScaler",
    "expected_calibration_error",
    "fit_platt",
    "fit_temperature",
    "reliability_curve",
]

_EPS = 1e-7


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per bin (equal-width on [0, 1]): mean predicted probability, observed positive rate, and count."""

    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    counts: np.ndarray
    bin_edges: np.ndarray


def _probabilities(labels: np.ndarray, probs: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    data = check_binary(labels, probs, name=name)
    if data.scores.min() < 0 or data.scores.max() > 1:
        raise DataError(f"{name}: probabilities must lie in [0, 1]; got [{data.scores.min():g}, {data.scores.max():g}]")
    return data.labels.astype(np.float64), data.scores


def reliability_curve(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> ReliabilityCurve:
    """Reliability curve over ``n_bins`` equal-width bins; empty bins are left out.

    Raises:
        ConfigError: if ``n_bins < 1``.
        LabelError, DataError: on invalid labels, or probabilities outside [0, 1].
    """
    if n_bins < 1:
        raise ConfigError(f"reliability_curve: n_bins={n_bins}; use at least 1")
    y, p = _probabilities(labels, probs, "reliability_curve")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    sum_p = np.bincount(which, weights=p, minlength=n_bins)
    sum_y = np.bincount(which, weights=y, minlength=n_bins)
    keep = counts > 0
    return ReliabilityCurve(
        mean_predicted=sum_p[keep] / counts[keep],
        observed_rate=sum_y[keep] / counts[keep],
        counts=counts[keep],
        bin_edges=edges,
    )


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean of |observed rate - mean predicted probability| over equal-width bins.

    Raises:
        ConfigError, LabelError, DataError: see :func:`reliability_curve`.
    """
    curve = reliability_curve(labels, probs, n_bins)
    gaps = np.abs(curve.observed_rate - curve.mean_predicted)
    return float((gaps * curve.counts).sum() / curve.counts.sum())


def _logit(probs: np.ndarray) -> np.ndarray:
    return special.logit(np.clip(probs, _EPS, 1 - _EPS))


def _nll(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, logits) - y * logits))


@dataclass(frozen=True)
class TemperatureScaler:
    """``p' = sigmoid(logit(p) / temperature)``."""

    temperature: float

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """Rescale probabilities."""
        return special.expit(_logit(np.asarray(probs, dtype=np.float64)) / self.temperature)


@dataclass(frozen=True)
class PlattScaler:
    """``p' = sigmoid(slope * logit(p) + intercept)``."""

    slope: float
    intercept: float

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """Rescale probabilities."""
        return special.expit(self.slope * _logit(np.asarray(probs, dtype=np.float64)) + self.intercept)


def fit_temperature(labels: np.ndarray, probs: np.ndarray) -> TemperatureScaler:
    """Fit one temperature by minimising the log loss on a calibration split.

    Raises:
        LabelError, DataError: on invalid labels or probabilities.
    """
    y, p = _probabilities(labels, probs, "fit_temperature")
    z = _logit(p)
    result = optimize.minimize_scalar(lambda log_t: _nll(z / np.exp(log_t), y), bounds=(-5.0, 5.0), method="bounded")
    return TemperatureScaler(temperature=float(np.exp(result.x)))


def fit_platt(labels: np.ndarray, probs: np.ndarray) -> PlattScaler:
    """Fit Platt scaling (a logistic regression on the logit) by minimising the log loss.

    Raises:
        LabelError, DataError: on invalid labels or probabilities.
    """
    y, p = _probabilities(labels, probs, "fit_platt")
    z = _logit(p)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        logits = params[0] * z + params[1]
        residual = special.expit(logits) - y
        return _nll(logits, y), np.array([np.mean(residual * z), np.mean(residual)])

    result = optimize.minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return PlattScaler(slope=float(result.x[0]), intercept=float(result.x[1]))
