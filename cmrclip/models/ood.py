"""Out-of-distribution guard of a study model: Mahalanobis distances on study embeddings and on input statistics.

Two Gaussian models are fitted on the **training** studies of a fine-tuning run, each with a Ledoit-Wolf shrinkage
covariance (stable with fewer studies than dimensions):

- ``embedding``: the study embedding (MIL-attention-weighted clip embeddings, L2-normalised; what ``embed`` returns);
- ``inputs``: a few statistics of the model's input clips (:func:`input_statistics`: grey-level quantiles, contrast,
  texture, motion and the bright-centre pattern of a cine), which see a domain shift (another scanner, noise, a
  non-cardiac image) even when a small encoder maps everything to nearby embeddings.

Each distance is divided by its threshold: the larger of the 99th percentile and mean + 3 SD of held-out
in-distribution distances (the run's **validation** studies, and the training studies each under a Gaussian fitted
without its fold), so a score above 1 means "farther from the training studies than about 99 % of held-out
in-distribution studies". The guard's score is the larger of the two; a study warns when
it exceeds 1. The fitted means, precision matrices and thresholds are stored in the bundle's ``calibration`` block
under the ``ood_`` keys (:meth:`OodGuard.to_calibration`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cmrclip.errors import DataError

__all__ = ["INPUT_STATISTICS", "GaussianDistance", "OodGuard", "fit_gaussian", "fit_ood_guard", "input_statistics"]

logger = logging.getLogger(__name__)

QUANTILE = 0.99
"""Share of held-out in-distribution studies whose distance lies under the threshold."""
_EPS = 1e-6
INPUT_STATISTICS = (
    "p01",
    "p50",
    "p99",
    "std",
    "gradient",
    "laplacian",
    "temporal_std",
    "frame_correlation",
    "centre_contrast",
)
"""The per-study input statistics (means over the study's clips), in order."""


@dataclass(frozen=True)
class GaussianDistance:
    """A Gaussian (mean, shrunk precision) and the Mahalanobis distance that bounds its in-distribution studies."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``x`` ``[n, d]`` (or one vector ``[d]``)."""
        diff = np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean
        return np.sqrt(np.einsum("nd,de,ne->n", diff, self.precision, diff).clip(0.0))


def _ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrinkage covariance of the rows of ``x`` (Ledoit & Wolf 2004, towards a scaled identity)."""
    n, d = x.shape
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / n
    mu = np.trace(cov) / d
    target = mu * np.eye(d)
    delta = np.sum((cov - target) ** 2) / d
    beta = (np.sum(np.sum(xc**2, axis=1) ** 2) - n * np.sum(cov**2)) / (n * n * d)  # sum_r |r r^T - cov|^2
    shrink = 0.0 if delta <= 0 else min(beta / delta, 1.0)
    return shrink * target + (1.0 - shrink) * cov + _EPS * np.eye(d)


def _gaussian(x: np.ndarray) -> GaussianDistance:
    return GaussianDistance(x.mean(axis=0), np.linalg.inv(_ledoit_wolf(x)), 0.0)


def _cross_fitted(x: np.ndarray, folds: int = 5) -> np.ndarray:
    """Distance of each row of ``x`` under a Gaussian fitted without its fold (honest in-distribution distances)."""
    out = np.empty(len(x))
    fold = np.arange(len(x)) % min(folds, len(x))
    for k in np.unique(fold):
        rest = x[fold != k]
        if len(rest) < 2:
            return np.empty(0)
        out[fold == k] = _gaussian(rest).distance(x[fold == k])
    return out


def fit_gaussian(fit: np.ndarray, calibrate: np.ndarray | None = None) -> GaussianDistance:
    """Fit a Gaussian on ``fit`` ``[n, d]``; the threshold bounds held-out in-distribution distances.

    The held-out distances are those of ``calibrate`` (held-out rows, e.g. the validation studies) and the
    5-fold cross-fitted distances of ``fit`` itself. The threshold is the larger of their 99th percentile and mean
    + 3 SD (the percentile of a few dozen studies is little more than their maximum; mean + 3 SD is steadier).

    Raises:
        DataError: with fewer than 2 rows to fit.
    """
    fit = np.asarray(fit, dtype=np.float64)
    if fit.ndim != 2 or len(fit) < 2:
        raise DataError(f"the OOD guard needs at least 2 training studies, got {len(fit)}")
    model = _gaussian(fit)
    held = [_cross_fitted(fit)]
    if calibrate is not None and len(calibrate):
        held.append(model.distance(np.asarray(calibrate, dtype=np.float64)))
    dist = np.concatenate(held)
    if dist.size == 0:
        dist = model.distance(fit)
    threshold = max(float(np.quantile(dist, QUANTILE)), float(dist.mean() + 3 * dist.std()))
    return GaussianDistance(model.mean, model.precision, max(threshold, _EPS))


def _clip_statistics(clip: np.ndarray) -> np.ndarray:
    """Statistics of one clip ``[T, H, W]`` (one channel, model-normalised), scale-free where it matters."""
    std = float(clip.std()) + _EPS
    p01, p50, p99 = np.quantile(clip, [0.01, 0.5, 0.99])
    gradient = (np.abs(np.diff(clip, axis=1)).mean() + np.abs(np.diff(clip, axis=2)).mean()) / (2 * std)
    lap = 4 * clip[:, 1:-1, 1:-1] - clip[:, :-2, 1:-1] - clip[:, 2:, 1:-1] - clip[:, 1:-1, :-2] - clip[:, 1:-1, 2:]
    temporal = clip.std(axis=0).mean() / std
    a, b = clip[:-1].reshape(len(clip) - 1, -1), clip[1:].reshape(len(clip) - 1, -1)
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    corr = np.mean((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + _EPS))
    h, w = clip.shape[1:]
    centre = clip[:, h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean()
    return np.array([p01, p50, p99, std, gradient, np.abs(lap).mean() / std, temporal, corr, (centre - p50) / std])


def input_statistics(clips: torch.Tensor | np.ndarray) -> np.ndarray:
    """The study's input statistics (:data:`INPUT_STATISTICS`): means over its clips ``[N, C, T, H, W]``.

    Raises:
        DataError: if the clips do not have that shape or have fewer than 2 frames.
    """
    x = clips.detach().cpu().numpy() if isinstance(clips, torch.Tensor) else np.asarray(clips)
    if x.ndim != 5 or x.shape[0] == 0 or x.shape[2] < 2:
        raise DataError(f"input statistics need clips [N, C, T>=2, H, W], got shape {tuple(x.shape)}")
    return np.mean([_clip_statistics(c[0].astype(np.float64)) for c in x], axis=0)


@dataclass(frozen=True)
class OodGuard:
    """The two distances of a bundle's out-of-distribution guard (see the module docstring)."""

    embedding: GaussianDistance
    inputs: GaussianDistance

    def score(self, embedding: np.ndarray, statistics: np.ndarray) -> tuple[float, list[str]]:
        """The guard's score (largest distance / threshold; > 1: out of distribution) and what exceeded it."""
        parts = {
            "study embedding": float(self.embedding.distance(embedding)[0] / self.embedding.threshold),
            "input image statistics": float(self.inputs.distance(statistics)[0] / self.inputs.threshold),
        }
        over = [f"{name} ({value:.1f}x the threshold)" for name, value in parts.items() if value > 1]
        return max(parts.values()), over

    def to_calibration(self) -> dict[str, torch.Tensor]:
        """The guard as ``ood_*`` tensors for a bundle's ``calibration`` block."""
        out = {}
        for name, part in (("embedding", self.embedding), ("inputs", self.inputs)):
            out[f"ood_{name}_mean"] = torch.as_tensor(part.mean, dtype=torch.float64)
            out[f"ood_{name}_precision"] = torch.as_tensor(part.precision, dtype=torch.float64)
            out[f"ood_{name}_threshold"] = torch.tensor(part.threshold, dtype=torch.float64)
        return out

    @classmethod
    def from_calibration(cls, calibration: Mapping[str, Any]) -> OodGuard | None:
        """The guard stored in a bundle's ``calibration`` block (``None`` for bundles written without one)."""

        def part(name: str) -> GaussianDistance:
            get = lambda k: np.asarray(calibration[f"ood_{name}_{k}"], dtype=np.float64)  # noqa: E731
            return GaussianDistance(get("mean"), get("precision"), float(get("threshold")))

        if "ood_embedding_mean" not in calibration:
            return None
        return cls(part("embedding"), part("inputs"))


def fit_ood_guard(
    embeddings: np.ndarray, statistics: np.ndarray, val_embeddings: np.ndarray, val_statistics: np.ndarray
) -> OodGuard:
    """Fit the guard on training studies' embeddings and input statistics; thresholds from the validation studies.

    Raises:
        DataError: with fewer than 2 training studies.
    """
    guard = OodGuard(fit_gaussian(embeddings, val_embeddings), fit_gaussian(statistics, val_statistics))
    logger.info("OOD guard fitted on %d studies (%d held out for the thresholds)", len(embeddings), len(val_embeddings))
    return guard
