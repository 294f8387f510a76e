"""PNG plots: ROC curves with DeLong CIs, reliability, LVEF scatter, Bland-Altman and data efficiency.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend, no display needed).
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cmrclip.errors import CmrclipError, DataError
from cmrclip.evaluate.calibration import reliability_curve
from cmrclip.evaluate.delong import delong_ci
from cmrclip.evaluate.metrics import regression_metrics, roc_curve

__all__ = [
    "Curve",
    "Panel",
    "plot_bland_altman",
    "plot_data_efficiency",
    "plot_lvef_scatter",
    "plot_reliability",
    "plot_roc",
    "save_figure",
]

logger = logging.getLogger(__name__)

DATA_EFFICIENCY_COLUMNS = ("init", "fraction", "value", "lower", "upper")


@dataclass(frozen=True)
class Curve:
    """One model's labels and scores for one target."""

    name: str
    labels: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Panel:
    """One subplot: a title (the target) and the curves drawn in it."""

    title: str
    curves: Sequence[Curve] = field(default_factory=tuple)


def save_figure(fig: Figure, out_png: Path) -> Path:
    """Write a matplotlib figure as PNG (90 dpi), creating the folder; return the path."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out_png, dpi=90, format="png")
    logger.info("wrote %s", out_png)
    return out_png


def _grid(n: int, size: float = 3.0) -> tuple[Figure, list[Axes]]:
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size * cols, size * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def _say_why(ax: Axes, index: int, what: str, exc: Exception) -> None:
    """Write in the panel why curve ``index`` is missing (one block per curve, stacked, never over each other)."""
    why = textwrap.fill(textwrap.shorten(str(exc), 90), 34)
    ax.text(0.5, 0.75 - 0.3 * index, f"{what}\n{why}", ha="center", va="top", fontsize=6, transform=ax.transAxes)


def _roc_panel(ax: Axes, panel: Panel) -> None:
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    for i, curve in enumerate(panel.curves):
        try:
            roc = roc_curve(curve.labels, curve.scores)
            ci = delong_ci(curve.labels, curve.scores)
        except CmrclipError as exc:
            _say_why(ax, i, f"{curve.name}: no ROC", exc)
            logger.info("no ROC for %s/%s: %s", panel.title, curve.name, exc)
            continue
        label = f"{curve.name} {ci.auc:.3f} [{ci.lower:.3f}, {ci.upper:.3f}]"
        ax.plot(roc.fpr, roc.tpr, lw=1.2, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="1 - specificity", ylabel="sensitivity")
    ax.set_title(panel.title, fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=6, title="AUROC [95% CI]", title_fontsize=6)


def plot_roc(panels: Sequence[Panel], out_png: Path) -> Path:
    """ROC curves, one subplot per target, each curve labelled with its AUROC and DeLong 95 % CI.

    Raises:
        DataError: if there is nothing to plot.
    """
    if not panels:
        raise DataError("plot_roc: no targets to plot")
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        _roc_panel(ax, panel)
    return save_figure(fig, out_png)


def plot_reliability(panels: Sequence[Panel], out_png: Path, n_bins: int = 10) -> Path:
    """Reliability diagrams (observed rate vs mean predicted probability), one subplot per target.

    Raises:
        DataError: if there is nothing to plot.
    """
    if not panels:
        raise DataError("plot_reliability: no targets to plot")
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        for i, curve in enumerate(panel.curves):
            try:
                rel = reliability_curve(curve.labels, curve.scores, n_bins)
            except CmrclipError as exc:
                _say_why(ax, i, f"{curve.name}: no reliability curve", exc)
                logger.info("no reliability curve for %s/%s: %s", panel.title, curve.name, exc)
                continue
            ax.plot(rel.mean_predicted, rel.observed_rate, marker="o", ms=3, lw=1, label=curve.name)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="observed rate")
        ax.set_title(panel.title, fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=6)
    return save_figure(fig, out_png)


def plot_lvef_scatter(pred: np.ndarray, true: np.ndarray, out_png: Path, name: str = "model") -> Path:
    """Predicted vs true LVEF with the identity line, MAE and r in the title.

    Raises:
        DataError: on invalid inputs (see :func:`cmrclip.evaluate.metrics.regression_metrics`).
    """
    m = regression_metrics(pred, true)
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.scatter(true, pred, s=6, alpha=0.5)
    lo = float(np.nanmin([np.nanmin(true), np.nanmin(pred)]))
    hi = float(np.nanmax([np.nanmax(true), np.nanmax(pred)]))
    ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--")
    ax.set(xlabel="true LVEF (%)", ylabel="predicted LVEF (%)")
    ax.set_title(f"{name}: MAE {m.mae:.2f}, r {m.pearson_r:.3f}, n={m.n}", fontsize=9)
    return save_figure(fig, out_png)


def plot_bland_altman(pred: np.ndarray, true: np.ndarray, out_png: Path, name: str = "model") -> Path:
    """Bland-Altman plot: difference (pred - true) vs mean, with the bias and 95 % limits of agreement.

    Raises:
        DataError: on invalid inputs (see :func:`cmrclip.evaluate.metrics.regression_metrics`).
    """
    m = regression_metrics(pred, true)
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    known = ~np.isnan(t)
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.scatter((p[known] + t[known]) / 2, p[known] - t[known], s=6, alpha=0.5)
    for value, style in ((m.bias, "-"), (m.loa_lower, "--"), (m.loa_upper, "--")):
        ax.axhline(value, color="tab:red", lw=1, ls=style)
    ax.set(xlabel="mean of predicted and true LVEF (%)", ylabel="predicted - true (%)")
    ax.set_title(f"{name}: bias {m.bias:.2f}, LoA [{m.loa_lower:.1f}, {m.loa_upper:.1f}]", fontsize=9)
    return save_figure(fig, out_png)


def plot_data_efficiency(table: pd.DataFrame, out_png: Path, metric_label: str = "AUROC") -> Path:
    """Metric vs labelled fraction (log x axis) with CI bands, one line per initialisation.

    Args:
        table: columns ``init`` (e.g. "cmrclip", "kinetics"), ``fraction`` (0-1], ``value``, ``lower``, ``upper``
            (``lower``/``upper`` may be NaN where no CI exists); several rows per (init, fraction) are averaged.
        out_png: the PNG to write.
        metric_label: the y-axis label.

    Raises:
        DataError: if a column is missing or a fraction is not in (0, 1].
    """
    missing = [c for c in DATA_EFFICIENCY_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"plot_data_efficiency: table lacks columns {missing}; need {list(DATA_EFFICIENCY_COLUMNS)}")
    frac = table["fraction"].astype(float)
    if not ((frac > 0) & (frac <= 1)).all():
        raise DataError("plot_data_efficiency: fractions must lie in (0, 1]")
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    for init, group in table.groupby("init", sort=True):
        g = group.groupby("fraction")[["value", "lower", "upper"]].mean().sort_index()
        ax.plot(g.index * 100, g["value"], marker="o", ms=4, label=str(init))
        ax.fill_between(g.index * 100, g["lower"], g["upper"], alpha=0.2)
    ax.set_xscale("log")
    ax.set(xlabel="labelled training data (%)", ylabel=metric_label)
    ax.legend(title="initialisation", fontsize=8)
    return save_figure(fig, out_png)
