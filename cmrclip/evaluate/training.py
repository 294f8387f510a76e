"""Summaries of training runs: headline test scores of a predictions table, and pretraining curves."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cmrclip.conditions import load_conditions
from cmrclip.errors import DataError
from cmrclip.evaluate.bootstrap import bootstrap_ci
from cmrclip.evaluate.evaluation import EvaluateConfig
from cmrclip.evaluate.metrics import auroc
from cmrclip.evaluate.plots import plot_data_efficiency, save_figure

__all__ = [
    "ZeroshotTables",
    "headline_scores",
    "plot_experiment",
    "plot_training_curves",
    "recall_columns",
    "training_figure",
    "write_zeroshot_summary",
    "zeroshot_summary",
]


MIN_POSITIVES = EvaluateConfig().min_positives
"""A condition enters the headline macro AUROC with at least this many positives (as in ``cmrclip evaluate``)."""


def _scorable(y: np.ndarray, min_positives: int) -> list[int]:
    """Columns with at least ``min_positives`` known positives and one known negative."""
    known = ~np.isnan(y)
    pos = np.nansum(y, axis=0)
    neg = known.sum(axis=0) - pos
    return [j for j in range(y.shape[1]) if pos[j] >= min_positives and neg[j] >= 1]


def _macro_auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Mean AUROC over the columns that have both classes among their known (non-NaN) labels."""
    values = []
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        if len(np.unique(y[known, j])) == 2:
            values.append(auroc(y[known, j], s[known, j]))
    return float(np.mean(values)) if values else math.nan


def _mae(pred: np.ndarray, true: np.ndarray) -> float:
    known = ~np.isnan(true)
    return float(np.mean(np.abs(pred[known] - true[known]))) if known.any() else math.nan


def headline_scores(
    pred: pd.DataFrame, n_boot: int = 200, seed: int = 0, min_positives: int = MIN_POSITIVES
) -> dict[str, tuple[float, float, float]]:
    """LVEF MAE and macro AUROC of a predictions table (docs §6 format) with 95 % bootstrap CIs.

    The macro AUROC averages the conditions with at least ``min_positives`` positives in the table (the ones
    ``cmrclip evaluate`` puts in its means); ``macro_auroc_conditions`` says how many there were.

    Returns:
        ``{"lvef_mae": (value, lower, upper), "macro_auroc": (...), "macro_auroc_conditions": (k, nan, nan)}``; a
        metric the table cannot support is NaN, and a CI the bootstrap cannot give (too few studies or one class)
        is (NaN, NaN).
    """
    keys = [c.removesuffix("_score") for c in pred.columns if c.endswith("_score")]
    stats = {}
    if "lvef_pred" in pred and "lvef" in pred:
        stats["lvef_mae"] = (_mae, (pred["lvef_pred"].to_numpy(float), pred["lvef"].to_numpy(float)))
    counted: list[int] = []
    if keys:
        labels = pred[keys].to_numpy(float)
        counted = _scorable(labels, min_positives)
        arrays = (labels[:, counted], pred[[f"{keys[j]}_score" for j in counted]].to_numpy(float))
        stats["macro_auroc"] = (_macro_auroc, arrays)
    out = {}
    for name, (fn, arrays) in stats.items():
        try:
            ci = bootstrap_ci(fn, arrays, np.random.default_rng(seed), n_boot=n_boot)
            out[name] = (ci.estimate, ci.lower, ci.upper)
        except DataError:
            out[name] = (fn(*arrays), math.nan, math.nan)
    if keys:
        out["macro_auroc_conditions"] = (float(len(counted)), math.nan, math.nan)
    return out


def plot_training_curves(metrics_jsonl: Path, out_png: Path) -> Path:
    """Plot loss, temperature and held-out recall@k per epoch from a pretraining run's ``metrics.jsonl``.

    Raises:
        DataError: if the file is missing or holds no records.
    """
    path = Path(metrics_jsonl)
    if not path.is_file():
        raise DataError(f"no training metrics at {path}; run `cmrclip pretrain` first")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise DataError(f"{path} holds no records")
    return save_figure(training_figure(pd.DataFrame(records)), out_png)


def recall_columns(table: pd.DataFrame) -> list[str]:
    """The held-out retrieval recall columns of pretraining metrics (``video_to_text_r@5``, ...) with a value."""
    return sorted(c for c in table.columns if "_r@" in c and table[c].notna().any())


def training_figure(table: pd.DataFrame) -> Figure:
    """Loss, temperature and held-out recall@k against the step; an empty recall panel says why."""
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    ax_loss, ax_temp, ax_recall = fig.subplots(1, 3)
    ax_loss.plot(table["step"], table["loss"], marker="o", ms=3)
    ax_loss.set(xlabel="step", ylabel="InfoNCE loss (train)")
    ax_temp.plot(table["step"], table["temperature"], marker="o", ms=3)
    ax_temp.set(xlabel="step", ylabel="temperature")
    for column in recall_columns(table):
        known = table[column].notna()
        ax_recall.plot(table.loc[known, "step"], table.loc[known, column], marker="o", ms=3, label=column)
    ax_recall.set(xlabel="step", ylabel="held-out recall")
    if ax_recall.lines:
        ax_recall.legend(fontsize=7)
    else:
        why = "no held-out recall recorded\n(no held-out studies, or no\nevaluation step in this run)"
        ax_recall.text(0.5, 0.5, why, ha="center", va="center", transform=ax_recall.transAxes, fontsize=8)
    return fig


EXPERIMENT_METRICS = (("macro_auroc", "macro AUROC (test)"), ("lvef_mae", "LVEF MAE, % (test)"))


def plot_experiment(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``out_dir/data_efficiency_<metric>.png`` for each headline metric that has a value in the grid's table."""
    plots = []
    for metric, label in EXPERIMENT_METRICS:
        rows = table[table["metric"] == metric]
        if rows["value"].notna().any():
            plots.append(plot_data_efficiency(rows, Path(out_dir) / f"data_efficiency_{metric}.png", label))
    return plots


def zeroshot_summary(
    predictions: pd.DataFrame,
    random_predictions: pd.DataFrame,
    retrieval: dict[str, float],
    random_retrieval: dict[str, float],
) -> pd.DataFrame:
    """Zero-shot macro AUROC (cine-visible conditions), LVEF MAE and retrieval recall, beside a random encoder's.

    Returns:
        One row per metric with columns ``metric``, ``encoder``, ``random_encoder``.
    """
    visible = [c.key for c in load_conditions() if c.cine_visible]
    cols = ["lvef_pred", "lvef"] + [f"{k}{s}" for k in visible for s in ("", "_score") if k in predictions]
    trained, chance = headline_scores(predictions[cols]), headline_scores(random_predictions[cols])
    rows = [{"metric": m, "encoder": trained[m][0], "random_encoder": chance[m][0]} for m in trained]
    rows += [
        {"metric": k, "encoder": v, "random_encoder": random_retrieval.get(k, math.nan)}
        for k, v in retrieval.items()
        if "r@" in k
    ]
    return pd.DataFrame(rows, columns=["metric", "encoder", "random_encoder"])


class ZeroshotTables(Protocol):
    """What :func:`write_zeroshot_summary` reads of a zero-shot run (``cmrclip.train.zeroshot.ZeroshotResult``)."""

    predictions: pd.DataFrame
    random_predictions: pd.DataFrame
    retrieval: dict[str, float]
    random_retrieval: dict[str, float]


def write_zeroshot_summary(result: ZeroshotTables, out_dir: Path) -> pd.DataFrame:
    """:func:`zeroshot_summary` of a zero-shot run, also written to ``out_dir/summary.csv``."""
    table = zeroshot_summary(result.predictions, result.random_predictions, result.retrieval, result.random_retrieval)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(out_dir) / "summary.csv", index=False)
    return table
