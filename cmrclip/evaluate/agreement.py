"""Scan-rescan agreement: how well a model's predictions repeat on two scans of the same patient."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cmrclip.errors import DataError

__all__ = ["Agreement", "scan_rescan_agreement"]


@dataclass(frozen=True)
class Agreement:
    """Pearson r, ICC(2,1) (two-way random, absolute agreement), within-subject SD and CoV (% of the mean)."""

    n: int
    pearson_r: float
    icc: float
    within_sd: float
    cov_percent: float
    mean_difference: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)


def _icc_2_1(x: np.ndarray) -> float:
    """ICC(2,1) of an ``[n, k]`` table (subjects x repeats), Shrout & Fleiss 1979."""
    n, k = x.shape
    grand = x.mean()
    ms_rows = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    ms_err = (resid**2).sum() / ((n - 1) * (k - 1))
    denom = ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n
    return float((ms_rows - ms_err) / denom) if denom > 0 else float("nan")


def scan_rescan_agreement(first: np.ndarray, second: np.ndarray) -> Agreement:
    """Agreement between predictions on a first and a repeat scan (row ``i`` = the same patient).

    Raises:
        DataError: on mismatched lengths, NaN values, fewer than 3 pairs, or constant predictions.
    """
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise DataError(f"scan-rescan: {a.size} first scans but {b.size} repeats; pair them by patient")
    if np.isnan(a).any() or np.isnan(b).any():
        raise DataError("scan-rescan: NaN predictions; drop patients without both scans")
    if a.size < 3:
        raise DataError(f"scan-rescan: {a.size} pairs; need at least 3")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise DataError("scan-rescan: predictions are constant; agreement is undefined")
    diff = b - a
    within_sd = float(np.sqrt((diff**2).mean() / 2))
    mean = float(np.r_[a, b].mean())
    return Agreement(
        n=int(a.size),
        pearson_r=float(np.corrcoef(a, b)[0, 1]),
        icc=_icc_2_1(np.stack([a, b], axis=1)),
        within_sd=within_sd,
        cov_percent=100 * within_sd / abs(mean) if mean != 0 else float("nan"),
        mean_difference=float(diff.mean()),
    )
