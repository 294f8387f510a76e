"""Evaluate a predictions table (and optionally compare it with a baseline): one long table of metrics with CIs.

Columns of the result: ``model`` (``model``, ``baseline`` or ``difference``), ``target``, ``metric``, ``value``,
``lower``, ``upper``, ``p_value``, ``n``, ``n_positive``, ``flag``. A non-empty ``flag`` says why a row is missing a
value or is left out of the ``macro``/``weighted`` means; no value is ever NaN without a flag.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from cmrclip.config import StrictModel
from cmrclip.errors import CmrclipError, DataError
from cmrclip.evaluate import metrics as M
from cmrclip.evaluate.agreement import scan_rescan_agreement
from cmrclip.evaluate.bootstrap import bootstrap_ci, stratified_bootstrap_ci
from cmrclip.evaluate.calibration import expected_calibration_error
from cmrclip.evaluate.conformal import empirical_coverage, fit_conformal
from cmrclip.evaluate.delong import delong_ci, delong_paired_test, delong_unpaired_test
from cmrclip.evaluate.io import DuplicatePolicy, Predictions, align_predictions
from cmrclip.progress import ProgressFn, null_progress

__all__ = [
    "COLUMNS",
    "EvaluateConfig",
    "binary_rows",
    "comparison_row",
    "evaluate_predictions",
    "lvef_rows",
    "repeat_rows",
    "summary_rows",
]

logger = logging.getLogger(__name__)

COLUMNS = ["model", "target", "metric", "value", "lower", "upper", "p_value", "n", "n_positive", "flag"]


class EvaluateConfig(StrictModel):
    """Options of ``cmrclip evaluate`` (defaults in ``cmrclip/configs/evaluate.yaml``)."""

    alpha: float = 0.05
    ci_method: Literal["delong", "bootstrap"] = "delong"
    n_bootstrap: int = 1000
    seed: int = 0
    min_positives: int = 10
    threshold: float = 0.5
    thresholds: dict[str, float] = Field(default_factory=dict)
    ece_bins: int = 10
    lvef_cutoffs: tuple[float, ...] = (40.0, 50.0)
    conformal_alpha: float = 0.1
    duplicates: DuplicatePolicy = "error"
    max_roc_panels: int = 40


def _row(model: str, target: str, metric: str, value: float, **extra: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(COLUMNS, np.nan)
    row.update(model=model, target=target, metric=metric, value=value, flag="")
    row.update(extra)
    return row


def _auroc_row(data: M.BinaryArrays, model: str, target: str, cfg: EvaluateConfig, rng: np.random.Generator) -> dict:
    """The AUROC row with its CI; where no CI can be computed the row keeps the AUROC and says why."""
    try:
        if cfg.ci_method == "bootstrap":
            ci = stratified_bootstrap_ci(data.labels, data.scores, M.auroc, rng, cfg.n_bootstrap, cfg.alpha)
            return _row(model, target, "auroc", ci.estimate, lower=ci.lower, upper=ci.upper)
        dl = delong_ci(data.labels, data.scores, cfg.alpha)
        return _row(model, target, "auroc", dl.auc, lower=dl.lower, upper=dl.upper)
    except CmrclipError as exc:
        return _row(model, target, "auroc", M.auroc(data.labels, data.scores), ci_error=f"no CI: {exc}")


def binary_rows(
    labels: np.ndarray, scores: np.ndarray, target: str, cfg: EvaluateConfig, rng: np.random.Generator, model: str
) -> list[dict[str, object]]:
    """Rows for one binary target: AUROC (CI), AUPRC, prevalence, sens/spec at the threshold and at Youden, ECE."""
    try:
        data = M.check_binary(labels, scores, name=f"{model}/{target}", drop_nan_scores=True)
    except CmrclipError as exc:
        known = int((~np.isnan(np.asarray(labels, dtype=np.float64))).sum())
        return [_row(model, target, "auroc", np.nan, n=known, flag=str(exc))]
    flags = []
    if data.n_dropped_nan_scores:
        flags.append(f"{data.n_dropped_nan_scores} NaN scores dropped")
    if data.n_positive < cfg.min_positives:
        flags.append(f"few positives ({data.n_positive} < {cfg.min_positives}); not in the means")
    y, s = data.labels.astype(float), data.scores
    youden = M.youden_threshold(y, s)
    threshold = cfg.thresholds.get(target, cfg.threshold)
    sens_t, spec_t = M.sens_spec(y, s, threshold)
    sens_y, spec_y = M.sens_spec(y, s, youden)
    auroc_row = _auroc_row(data, model, target, cfg, rng)
    if "ci_error" in auroc_row:
        flags.append(str(auroc_row.pop("ci_error")))
    rows = [
        auroc_row,
        _row(model, target, "auprc", M.auprc(y, s)),
        _row(model, target, "prevalence", data.n_positive / y.size),
        _row(model, target, "threshold", threshold),
        _row(model, target, "sensitivity@threshold", sens_t),
        _row(model, target, "specificity@threshold", spec_t),
        _row(model, target, "youden_threshold", youden),
        _row(model, target, "sensitivity@youden", sens_y),
        _row(model, target, "specificity@youden", spec_y),
    ]
    if s.min() >= 0 and s.max() <= 1:
        rows.append(_row(model, target, "ece", expected_calibration_error(y, s, cfg.ece_bins)))
    for row in rows:
        row.update(n=y.size, n_positive=data.n_positive, flag="; ".join(flags))
    return rows


def comparison_row(labels: np.ndarray, scores: np.ndarray, base_scores: np.ndarray, target: str) -> dict[str, object]:
    """The paired DeLong comparison of the model's and the baseline's AUROC on the studies both scored."""
    y = np.asarray(labels, dtype=np.float64)
    keep = ~(np.isnan(y) | np.isnan(scores) | np.isnan(base_scores))
    try:
        test = delong_paired_test(y[keep], scores[keep], base_scores[keep])
    except CmrclipError as exc:
        return _row("difference", target, "auroc", np.nan, n=int(keep.sum()), flag=str(exc))
    return _row(
        "difference", target, "auroc", test.difference, p_value=test.p_value, n=int(keep.sum()),
        n_positive=int(y[keep].sum()),
    )  # fmt: skip


def unpaired_comparison_row(
    labels: np.ndarray, scores: np.ndarray, base_labels: np.ndarray, base_scores: np.ndarray, target: str
) -> dict[str, object]:
    """Compare two tables that keep their own rows (``duplicates=keep``).

    The paired DeLong test when their label vectors are identical (rows paired in table order), else the unpaired
    test with Welch degrees of freedom, as R ``pROC``'s ``roc.test`` does. The original system paired rows in each
    exported file's order, which a folder read as one table does not keep, so its p-values are not all reproduced.
    """
    y1, s1, y2, s2 = (np.asarray(a, dtype=np.float64) for a in (labels, scores, base_labels, base_scores))
    k1, k2 = ~(np.isnan(y1) | np.isnan(s1)), ~(np.isnan(y2) | np.isnan(s2))
    y1, s1, y2, s2 = y1[k1], s1[k1], y2[k2], s2[k2]
    try:
        paired = np.array_equal(y1, y2)
        test = delong_paired_test(y1, s1, s2) if paired else delong_unpaired_test(y1, s1, y2, s2)
    except CmrclipError as exc:
        return _row("difference", target, "auroc", np.nan, n=int(k1.sum()), flag=str(exc))
    flag = "" if test.paired else "unpaired DeLong test (the tables' rows differ)"
    return _row(
        "difference", target, "auroc", test.difference, p_value=test.p_value, n=int(k1.sum()),
        n_positive=int(y1.sum()), flag=flag,
    )  # fmt: skip


def lvef_rows(
    pred: np.ndarray, true: np.ndarray, cfg: EvaluateConfig, rng: np.random.Generator, model: str
) -> list[dict[str, object]]:
    """Rows for LVEF: MAE (bootstrap CI), RMSE, bias, r, R², limits of agreement, AUROC at cutoffs, conformal."""
    try:
        reg = M.regression_metrics(pred, true)
    except DataError as exc:
        return [_row(model, "lvef", "mae", np.nan, flag=str(exc))]
    known = ~np.isnan(true)
    p, t = pred[known], true[known]
    mae = bootstrap_ci(lambda a, b: float(np.abs(a - b).mean()), (p, t), rng, cfg.n_bootstrap, cfg.alpha)
    rows = [_row(model, "lvef", "mae", reg.mae, lower=mae.lower, upper=mae.upper)]
    for name in ("rmse", "bias", "pearson_r", "r2", "loa_lower", "loa_upper"):
        value = getattr(reg, name)
        rows.append(_row(model, "lvef", name, value, flag="" if math.isfinite(value) else "undefined (constant)"))
    for cutoff in cfg.lvef_cutoffs:
        y = np.where(np.isnan(true), np.nan, (true < cutoff).astype(float))
        for row in binary_rows(y, -pred, f"lvef<{cutoff:g}", cfg, rng, model)[:1]:
            rows.append(row)
    rows += _conformal_rows(p, t, cfg, rng, model)
    for row in rows:
        if row["target"] == "lvef":
            row["n"] = reg.n
    return rows


def _conformal_rows(
    p: np.ndarray, t: np.ndarray, cfg: EvaluateConfig, rng: np.random.Generator, model: str
) -> list[dict[str, object]]:
    """Split the studies in half: fit the conformal interval on one half, report its coverage on the other."""
    order = rng.permutation(p.size)
    cal, test = order[: p.size // 2], order[p.size // 2 :]
    try:
        conf = fit_conformal(p[cal], t[cal], cfg.conformal_alpha)
    except DataError as exc:
        return [_row(model, "lvef", "conformal_half_width", np.nan, flag=str(exc))]
    lo, hi = conf.interval(p[test])
    level = f"@{1 - cfg.conformal_alpha:g}"
    return [
        _row(model, "lvef", f"conformal_half_width{level}", conf.half_width),
        _row(model, "lvef", f"conformal_coverage{level}", empirical_coverage(lo, hi, t[test])),
    ]


def repeat_rows(table: pd.DataFrame, column: str = "lvef_pred") -> list[dict[str, object]]:
    """Agreement of ``column`` between each patient's first two studies (needs ``patient_key``; table order)."""
    if "patient_key" not in table.columns or column not in table.columns:
        return []
    known = table[table["patient_key"].notna() & table[column].notna()]
    ranked = known.groupby("patient_key", sort=False).cumcount()
    first = known[ranked == 0].set_index("patient_key")[column]
    second = known[ranked == 1].set_index("patient_key")[column]
    if second.empty:
        return []
    pairs = pd.concat([first, second], axis=1, join="inner").to_numpy(np.float64)
    try:
        agree = scan_rescan_agreement(pairs[:, 0], pairs[:, 1])
    except DataError as exc:
        return [_row("model", "lvef_repeat", "icc", np.nan, n=len(pairs), flag=str(exc))]
    return [
        _row("model", "lvef_repeat", name, getattr(agree, name), n=agree.n)
        for name in ("pearson_r", "icc", "within_sd", "cov_percent", "mean_difference")
    ]


def summary_rows(table: pd.DataFrame) -> list[dict[str, object]]:
    """Macro and prevalence-weighted means of AUROC/AUPRC over unflagged condition targets, per model."""
    rows = []
    conditions = table[~table["target"].astype(str).str.startswith("lvef")]
    for model in ("model", "baseline"):
        mine = conditions[conditions["model"] == model]
        n_targets = mine["target"].nunique()
        for metric in ("auroc", "auprc"):
            ok = mine[(mine["metric"] == metric) & (mine["flag"] == "") & mine["value"].notna()]
            left_out = n_targets - len(ok)
            flag = f"{left_out} of {n_targets} targets flagged and left out" if left_out else ""
            if n_targets == 0:
                continue
            if ok.empty:
                rows += [_row(model, name, metric, np.nan, n=0, flag=flag) for name in ("macro", "weighted")]
                continue
            weighted = float(np.average(ok["value"], weights=ok["n_positive"].astype(float)))
            rows.append(_row(model, "macro", metric, float(ok["value"].mean()), n=len(ok), flag=flag))
            rows.append(_row(model, "weighted", metric, weighted, n=len(ok), flag=flag))
    return rows


def evaluate_predictions(
    model: Predictions,
    baseline: Predictions | None = None,
    cfg: EvaluateConfig | None = None,
    progress: ProgressFn = null_progress,
) -> pd.DataFrame:
    """Evaluate every target of ``model`` (and ``baseline``, compared by paired DeLong tests) into one long table.

    With ``duplicates=keep`` each table is evaluated on its own rows and truth (their ids need not match), and the
    comparison is :func:`unpaired_comparison_row`.

    Raises:
        DataError: if the baseline covers different studies than the model.
    """
    cfg = cfg or EvaluateConfig()
    rng = np.random.default_rng(cfg.seed)
    own_rows = cfg.duplicates == "keep"  # each table keeps its own rows and truth; no pairing by study id
    base = align_predictions(model, baseline) if baseline is not None and not own_rows else baseline
    rows: list[dict[str, object]] = []
    targets = model.targets
    for i, target in enumerate(targets):
        y = model.table[target].to_numpy(np.float64)
        s = model.table[f"{target}_score"].to_numpy(np.float64)
        rows += binary_rows(y, s, target, cfg, rng, "model")
        if base is not None and target in base.targets:
            bs = base.table[f"{target}_score"].to_numpy(np.float64)
            by = base.table[target].to_numpy(np.float64) if own_rows else y
            rows += binary_rows(by, bs, target, cfg, rng, "baseline")
            compare = unpaired_comparison_row(y, s, by, bs, target) if own_rows else comparison_row(y, s, bs, target)
            rows.append(compare)
        progress("evaluate", i + 1, len(targets))
    if model.has_lvef:
        true = model.table["lvef"].to_numpy(np.float64)
        rows += lvef_rows(model.table["lvef_pred"].to_numpy(np.float64), true, cfg, rng, "model")
        if base is not None and base.has_lvef:
            base_true = base.table["lvef"].to_numpy(np.float64) if own_rows else true
            rows += lvef_rows(base.table["lvef_pred"].to_numpy(np.float64), base_true, cfg, rng, "baseline")
        rows += repeat_rows(model.table)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = pd.concat([table, pd.DataFrame(summary_rows(table), columns=COLUMNS)], ignore_index=True)
    unflagged_nan = table["value"].isna() & (table["flag"] == "")
    if unflagged_nan.any():
        raise DataError(f"internal: unflagged NaN values in {table.loc[unflagged_nan, ['target', 'metric']].values}")
    return table
