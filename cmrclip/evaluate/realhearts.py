"""Scoring on real hearts (``benchmarks/real_hearts.py``): patient splits, the one-split check, few-label heads, tables.

Numpy only. The few-label heads are fitted on frozen study features of a handful of real studies: ridge regression
for LVEF and a one-vs-rest ridge classifier (argmax) for the diagnostic group, both on standardised features.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cmrclip.errors import DataError
from cmrclip.evaluate.metrics import auroc, regression_metrics
from cmrclip.evaluate.plots import save_figure

__all__ = [
    "PREDICTION_COLUMNS",
    "RidgeHead",
    "check_one_split",
    "fit_ridge",
    "ood_auroc",
    "plot_real_lvef",
    "score_table",
    "stratified_folds",
]

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("dataset", "subject", "encoder", "setting", "lvef_true", "lvef_pred", "group_true", "group_pred")
"""Columns of ``predictions.csv``, in order."""


def stratified_folds(subjects: Sequence[str], groups: Sequence[str | None], k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) of each subject: shuffled within each group, then dealt round-robin (by patient).

    Raises:
        DataError: with fewer subjects than folds or repeated subjects.
    """
    if len(set(subjects)) != len(subjects):
        raise DataError("stratified_folds: each subject (patient) must appear once")
    if len(subjects) < k:
        raise DataError(f"{len(subjects)} subjects cannot make {k} folds")
    rng = np.random.default_rng(seed)
    folds = np.empty(len(subjects), dtype=int)
    order = []
    for group in sorted({g or "" for g in groups}):
        members = [i for i, g in enumerate(groups) if (g or "") == group]
        order += [members[j] for j in rng.permutation(len(members))]
    folds[order] = np.arange(len(order)) % k
    return folds


def check_one_split(upstream: Mapping[str, set[str]], evaluated: set[str]) -> dict[str, Any]:
    """Check that no evaluated subject built or trained anything upstream; return the check for ``metrics.json``.

    Args:
        upstream: what each upstream stage used, e.g. ``{"realistic cohort": {...}, "pretraining": {...}}``.
        evaluated: the subjects a model is scored on.

    Raises:
        DataError: naming the stage and the subjects that appear in both.
    """
    for stage, used in upstream.items():
        both = sorted(set(used) & set(evaluated))
        if both:
            raise DataError(
                f"one-split rule broken: {len(both)} evaluated subject(s) also used by the {stage}: {both[:8]}; "
                "keep test subjects out of every training source"
            )
    return {"passed": True, "evaluated": sorted(evaluated), "upstream": {k: sorted(v) for k, v in upstream.items()}}


@dataclass(frozen=True)
class RidgeHead:
    """A ridge model on standardised features: ``regress`` (one output) or ``classify`` (argmax over classes)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: np.ndarray
    classes: tuple[str, ...] = ()

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(x) - self.mean) / self.scale) @ self.weights + self.intercept

    def regress(self, x: np.ndarray) -> np.ndarray:
        """Predicted values ``[n]``."""
        return self._raw(x)[:, 0]

    def classify(self, x: np.ndarray) -> list[str]:
        """Predicted class of each row."""
        return [self.classes[i] for i in self._raw(x).argmax(axis=1)]


def fit_ridge(x: np.ndarray, y: Sequence[float] | Sequence[str], alpha: float = 1.0) -> RidgeHead:
    """Fit ridge regression (numeric ``y``) or a one-vs-rest ridge classifier (string ``y``) on rows ``x``.

    Raises:
        DataError: with fewer than 2 rows or mismatched lengths.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2 or len(x) != len(y):
        raise DataError(f"fit_ridge: {len(x)} feature rows for {len(y)} targets; need at least 2 of each")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
    z = (x - mean) / scale
    classes: tuple[str, ...] = ()
    if isinstance(y[0], str):
        classes = tuple(sorted(set(y)))
        target = np.array([[1.0 if v == c else 0.0 for c in classes] for v in y])
    else:
        target = np.asarray(y, dtype=np.float64)[:, None]
    offset = target.mean(axis=0)
    # dual form: cheap with many more features than studies
    gram = z @ z.T + alpha * len(z) * np.eye(len(z))
    weights = z.T @ np.linalg.solve(gram, target - offset)
    return RidgeHead(mean, scale, weights, offset, classes)


def ood_auroc(real_scores: Sequence[float], synthetic_scores: Sequence[float]) -> float:
    """AUROC of an OOD score at telling real studies (positives) from held-out synthetic ones."""
    labels = np.r_[np.ones(len(real_scores)), np.zeros(len(synthetic_scores))]
    return auroc(labels, np.r_[np.asarray(real_scores, float), np.asarray(synthetic_scores, float)])


def _cell(rows: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    known = rows.dropna(subset=["lvef_true", "lvef_pred"])
    if len(known) >= 3:
        m = regression_metrics(known["lvef_pred"].to_numpy(), known["lvef_true"].to_numpy())
        out |= {"lvef_mae": m.mae, "lvef_bias": m.bias, "lvef_r": m.pearson_r}
    elif len(known):
        out["lvef_mae"] = float((known["lvef_pred"] - known["lvef_true"]).abs().mean())
    groups = rows[rows["group_true"].fillna("").astype(str).ne("") & rows["group_pred"].fillna("").astype(str).ne("")]
    if len(groups):
        out["group_accuracy"] = float((groups["group_true"] == groups["group_pred"]).mean())
    return out


def score_table(table: pd.DataFrame) -> dict[str, Any]:
    """Metrics per setting, encoder and dataset (plus ``all`` datasets) from a ``predictions.csv`` table.

    Returns ``{setting: {encoder: {dataset: {"n", "lvef_mae", "lvef_bias", "lvef_r", "group_accuracy"}}}}``
    (keys present where they can be computed).
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"the predictions table lacks column(s) {missing}")
    out: dict[str, Any] = {}
    for (setting, encoder), rows in table.groupby(["setting", "encoder"], sort=True):
        cells = {str(d): _cell(r) for d, r in rows.groupby("dataset", sort=True)}
        cells["all"] = _cell(rows)
        out.setdefault(str(setting), {})[str(encoder)] = cells
    return out


def plot_real_lvef(table: pd.DataFrame, out_png: Path, title: str = "") -> Path:
    """Predicted vs true LVEF per real study: one colour per ``dataset``, hollow markers where ``role`` is ``train``.

    Args:
        table: rows with ``dataset``, ``lvef_true``, ``lvef_pred`` and ``role`` (``train`` or ``test``).
        out_png: the figure.
        title: figure title.
    """
    fig = Figure(figsize=(5.0, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, (dataset, rows) in enumerate(table.groupby("dataset", sort=True)):
        colour = f"C{i}"
        for role, face in (("test", colour), ("train", "none")):
            part = rows[rows["role"] == role]
            if len(part):
                label = f"{dataset} ({'training heart' if role == 'train' else 'evaluation'}, n={len(part)})"
                ax.scatter(part["lvef_true"], part["lvef_pred"], s=22, facecolors=face, edgecolors=colour, label=label)
    ax.plot([0, 100], [0, 100], color="0.4", lw=0.8, ls="--")
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="true LVEF (%)", ylabel="predicted LVEF (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, out_png)
