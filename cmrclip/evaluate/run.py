"""The ``cmrclip evaluate`` job: predictions (and a baseline) -> metrics.json, metrics.csv, PNG plots, report.html."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cmrclip.config import save_config
from cmrclip.evaluate.evaluation import EvaluateConfig, evaluate_predictions
from cmrclip.evaluate.io import Predictions, align_predictions, read_predictions
from cmrclip.evaluate.plots import Curve, Panel, plot_bland_altman, plot_lvef_scatter, plot_reliability, plot_roc
from cmrclip.evaluate.report import ReportImage, ReportSection, build_html_report
from cmrclip.progress import ProgressFn, null_progress

__all__ = ["EvaluationOutputs", "run_evaluate", "write_metrics"]

logger = logging.getLogger(__name__)


_LVEF_NOTE = (
    "bias = mean(predicted - true); loa = Bland-Altman 95 % limits of agreement; lvef<C: AUROC of the predicted LVEF "
    "for a true LVEF below C (lower prediction = positive). Conformal: intervals fitted on a random half of the "
    "studies, coverage measured on the other half. lvef_repeat: agreement between each patient's first two studies "
    "(a scan-rescan measure only where both studies come from one session)."
)


@dataclass
class EvaluationOutputs:
    """What the job wrote, and the metrics table."""

    out_dir: Path
    table: pd.DataFrame
    metrics_json: Path
    metrics_csv: Path
    report: Path
    plots: dict[str, Path] = field(default_factory=dict)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _summary(table: pd.DataFrame) -> dict[str, Any]:
    rows = table[table["target"].isin(["macro", "weighted"]) | (table["target"] == "lvef")]
    return {f"{r.model}/{r.target}/{r.metric}": _clean(r.value) for r in rows.itertuples()}


def write_metrics(table: pd.DataFrame, out_dir: Path, info: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``metrics.csv`` (the long table) and ``metrics.json`` (``info``, a summary, and every row)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "metrics.csv"
    table.to_csv(csv_path, index=False)
    records = [{k: _clean(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
    body = {**info, "summary": _summary(table), "metrics": records}
    json_path = out_dir / "metrics.json"
    json_path.write_text(json.dumps(body, indent=1, allow_nan=False), encoding="utf-8")
    return json_path, csv_path


def _known(curve: Curve) -> Curve:
    """The curve without rows of unknown truth or score."""
    keep = ~np.isnan(curve.labels) & ~np.isnan(curve.scores)
    return Curve(curve.name, curve.labels[keep], curve.scores[keep])


def _panels(model: Predictions, base: Predictions | None, targets: list[str], own_rows: bool) -> list[Panel]:
    panels = []
    for target in targets:
        y = model.table[target].to_numpy(np.float64)
        curves = [Curve("model", y, model.table[f"{target}_score"].to_numpy(np.float64))]
        if base is not None and target in base.targets:
            by = base.table[target].to_numpy(np.float64) if own_rows else y
            curves.append(Curve("baseline", by, base.table[f"{target}_score"].to_numpy(np.float64)))
        panels.append(Panel(target, [_known(c) for c in curves]))
    return panels


def _plot_targets(model: Predictions, table: pd.DataFrame, limit: int) -> list[str]:
    """Targets with an AUROC, most positives first, at most ``limit``."""
    rows = table[(table["model"] == "model") & (table["metric"] == "auroc") & table["value"].notna()]
    rows = rows[rows["target"].isin(model.targets)].sort_values("n_positive", ascending=False)
    return rows["target"].head(limit).tolist()


def _make_plots(
    model: Predictions, base: Predictions | None, table: pd.DataFrame, cfg: EvaluateConfig, out_dir: Path
) -> dict[str, Path]:
    plots: dict[str, Path] = {}
    targets = _plot_targets(model, table, cfg.max_roc_panels)
    if targets:
        panels = _panels(model, base, targets, cfg.duplicates == "keep")
        plots["roc"] = plot_roc(panels, out_dir / "roc.png")
        if all(c.scores.min() >= 0 and c.scores.max() <= 1 for p in panels for c in p.curves if c.scores.size):
            plots["calibration"] = plot_reliability(panels, out_dir / "calibration.png", cfg.ece_bins)
    ok = table[(table["target"] == "lvef") & (table["metric"] == "mae") & table["value"].notna()]
    for name, preds in (("model", model), ("baseline", base)):
        if preds is None or name not in set(ok["model"]):
            continue
        truth = preds if cfg.duplicates == "keep" else model  # keep: each table against its own truth
        pred, true = preds.table["lvef_pred"].to_numpy(np.float64), truth.table["lvef"].to_numpy(np.float64)
        suffix = "" if name == "model" else "_baseline"
        plots[f"lvef_scatter{suffix}"] = plot_lvef_scatter(pred, true, out_dir / f"lvef_scatter{suffix}.png", name)
        path = out_dir / f"lvef_bland_altman{suffix}.png"
        plots[f"lvef_bland_altman{suffix}"] = plot_bland_altman(pred, true, path, name)
    return plots


def _condition_table(table: pd.DataFrame) -> pd.DataFrame:
    """Wide per-target view: AUROC [CI], AUPRC, baseline AUROC, difference and p-value, flags."""
    cond = table[~table["target"].astype(str).str.startswith("lvef") & table["metric"].isin(["auroc", "auprc"])]
    out = []
    for target, group in cond.groupby("target", sort=False):
        get = {(r.model, r.metric): r for r in group.itertuples()}
        row: dict[str, Any] = {"target": target}
        for model in ("model", "baseline"):
            auc = get.get((model, "auroc"))
            if auc is not None:
                ci = "" if math.isnan(auc.lower) else f" [{auc.lower:.3f}, {auc.upper:.3f}]"
                row[f"{model} AUROC"] = "" if math.isnan(auc.value) else f"{auc.value:.3f}{ci}"
                row[f"{model} AUPRC"] = getattr(get.get((model, "auprc")), "value", float("nan"))
        diff = get.get(("difference", "auroc"))
        if diff is not None:
            row["difference"], row["p (DeLong)"] = diff.value, diff.p_value
        model_row = get.get(("model", "auroc"))
        row["n"], row["positives"] = model_row.n, model_row.n_positive
        row["flag"] = "; ".join(sorted({str(r.flag) for r in group.itertuples() if r.flag}))
        out.append(row)
    return pd.DataFrame(out)


def _report(
    out_dir: Path, table: pd.DataFrame, plots: dict[str, Path], info: dict[str, Any], cfg: EvaluateConfig
) -> Path:
    data = (
        f"Predictions: {info['predictions']}\nBaseline: {info['baseline'] or 'none'}\n"
        f"Studies: {info['n_studies']}; binary targets: {len(info['targets'])}; LVEF: {info['has_lvef']}"
    )
    notes = "\n".join(info["notes"]) or "none"
    sections = [
        ReportSection("Data", text=data + "\n\nReading notes:\n" + notes),
        ReportSection("Summary", table=table[table["target"].isin(["macro", "weighted"])]),
    ]
    conditions = _condition_table(table)
    if not conditions.empty:
        sections.append(ReportSection("Conditions (AUROC, higher score = positive; DeLong 95 % CI)", table=conditions))
    images = [ReportImage(plots[k], caption=k) for k in ("roc", "calibration") if k in plots]
    if images:
        sections.append(ReportSection("ROC and calibration", images=images))
    lvef = table[table["target"].astype(str).str.startswith("lvef")]
    if not lvef.empty:
        lvef_images = [ReportImage(p, caption=k) for k, p in plots.items() if k.startswith("lvef")]
        sections.append(ReportSection("LVEF", text=_LVEF_NOTE, table=lvef, images=lvef_images))
    sections.append(ReportSection("Configuration", code=yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)))
    return build_html_report("cmrclip evaluation", sections, out_dir / "report.html", subtitle=info["predictions"])


def run_evaluate(
    predictions: Path,
    out_dir: Path,
    baseline: Path | None = None,
    cfg: EvaluateConfig | None = None,
    progress: ProgressFn = null_progress,
) -> EvaluationOutputs:
    """Evaluate a predictions file (optionally against a baseline on the same studies) and write every output.

    Raises:
        DataError, LabelError: on unreadable or inconsistent predictions (see :mod:`cmrclip.evaluate.io`).
    """
    cfg = cfg or EvaluateConfig()
    out_dir = Path(out_dir)
    model = read_predictions(predictions, cfg.duplicates)
    base = read_predictions(baseline, cfg.duplicates) if baseline is not None else None
    base = align_predictions(model, base) if base is not None and cfg.duplicates != "keep" else base
    table = evaluate_predictions(model, base, cfg, progress)
    info = {
        "predictions": str(predictions),
        "baseline": str(baseline) if baseline is not None else None,
        "n_studies": len(model.table),
        "targets": model.targets,
        "has_lvef": model.has_lvef,
        "notes": model.notes + (base.notes if base is not None else []),
        "config": cfg.model_dump(mode="json"),
    }
    save_config(cfg, out_dir, cfg.seed)
    json_path, csv_path = write_metrics(table, out_dir, info)
    plots = _make_plots(model, base, table, cfg, out_dir)
    report = _report(out_dir, table, plots, info, cfg)
    return EvaluationOutputs(out_dir, table, json_path, csv_path, report, plots)
