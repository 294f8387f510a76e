from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmrclip.evaluate.conftest import synthetic_table
from cmrclip.evaluate.evaluation import EvaluateConfig, evaluate_predictions
from cmrclip.evaluate.io import Predictions
from cmrclip.evaluate.metrics import auroc


def _preds(table: pd.DataFrame) -> Predictions:
    return Predictions(table=table.set_index("study_key"), source="test")


def _get(result, model, target, metric):
    rows = result[(result["model"] == model) & (result["target"] == target) & (result["metric"] == metric)]
    assert len(rows) == 1, (model, target, metric)
    return rows.iloc[0]


def test_table_values_flags_and_means():
    table = synthetic_table(0)
    result = evaluate_predictions(_preds(table), _preds(synthetic_table(0, shift=0.5, lvef_noise=9)))
    hcm = _get(result, "model", "Hypertrophic.Cardiomyopathy", "auroc")
    key = "Hypertrophic.Cardiomyopathy"
    assert hcm["value"] == pytest.approx(auroc(table[key], table[f"{key}_score"]))
    assert hcm["lower"] < hcm["value"] < hcm["upper"] and hcm["flag"] == ""
    rare = _get(result, "model", "Atrial.Myxoma", "auroc")
    assert "few positives" in rare["flag"]
    ok = [_get(result, "model", t, "auroc") for t in ("Hypertrophic.Cardiomyopathy", "Amyloid")]
    assert _get(result, "model", "macro", "auroc")["value"] == pytest.approx(np.mean([r["value"] for r in ok]))
    weighted = np.average([r["value"] for r in ok], weights=[r["n_positive"] for r in ok])
    assert _get(result, "model", "weighted", "auroc")["value"] == pytest.approx(weighted)
    assert _get(result, "model", "macro", "auroc")["flag"] == "1 of 3 targets flagged and left out"
    assert _get(result, "model", "macro", "auprc")["flag"] == "1 of 3 targets flagged and left out"
    diff = _get(result, "difference", "Hypertrophic.Cardiomyopathy", "auroc")
    assert diff["value"] > 0 and 0 <= diff["p_value"] < 0.05
    assert _get(result, "model", "lvef", "mae")["value"] < _get(result, "baseline", "lvef", "mae")["value"]
    coverage = _get(result, "model", "lvef", "conformal_coverage@0.9")["value"]
    assert 0.8 < coverage <= 1.0
    assert _get(result, "model", "lvef<40", "auroc")["value"] > 0.8
    assert not (result["value"].isna() & (result["flag"] == "")).any()


def test_bad_targets_are_flagged_not_crashing():
    table = synthetic_table(1, n=120)
    table["Amyloid"] = 0.0  # one class only
    table.loc[:4, "Hypertrophic.Cardiomyopathy_score"] = np.nan  # NaN scores
    result = evaluate_predictions(_preds(table))
    amyloid = _get(result, "model", "Amyloid", "auroc")
    assert np.isnan(amyloid["value"]) and "only one class" in amyloid["flag"]
    hcm = _get(result, "model", "Hypertrophic.Cardiomyopathy", "auroc")
    assert "5 NaN scores dropped" in hcm["flag"] and np.isfinite(hcm["value"]) and hcm["n"] == 115
    macro = _get(result, "model", "macro", "auroc")
    assert np.isnan(macro["value"]) and macro["flag"] == "3 of 3 targets flagged and left out"
    assert np.isnan(_get(result, "model", "weighted", "auprc")["value"])


def test_bootstrap_ci_option_and_seed():
    table = synthetic_table(2, n=150)
    cfg = EvaluateConfig(ci_method="bootstrap", n_bootstrap=200, seed=3)
    a = evaluate_predictions(_preds(table), cfg=cfg)
    b = evaluate_predictions(_preds(table), cfg=cfg)
    pd.testing.assert_frame_equal(a, b)
    row = _get(a, "model", "Hypertrophic.Cardiomyopathy", "auroc")
    assert row["lower"] < row["value"] < row["upper"]


def test_single_positive_keeps_auroc_without_ci():
    table = synthetic_table(3, n=80)
    table["Amyloid"] = 0.0
    table.loc[7, "Amyloid"] = 1.0
    row = _get(evaluate_predictions(_preds(table)), "model", "Amyloid", "auroc")
    assert np.isfinite(row["value"]) and np.isnan(row["lower"]) and "no CI" in row["flag"]


def test_repeat_study_agreement_uses_first_two_studies_per_patient():
    table = synthetic_table(4, n=200)  # patient_key pairs consecutive studies
    table["lvef_pred"] = np.repeat(table["lvef"].to_numpy()[::2], 2) + np.random.default_rng(0).normal(0, 1, 200)
    result = evaluate_predictions(_preds(table))
    icc = _get(result, "model", "lvef_repeat", "icc")
    assert icc["n"] == 100 and icc["value"] > 0.95
    assert _get(result, "model", "lvef_repeat", "within_sd")["value"] == pytest.approx(1.0, rel=0.2)


def test_per_target_threshold_overrides_default():
    table = synthetic_table(5, n=200)
    key = "Hypertrophic.Cardiomyopathy"
    result = evaluate_predictions(_preds(table), cfg=EvaluateConfig(thresholds={key: 0.2}))
    assert _get(result, "model", key, "threshold")["value"] == 0.2
    assert _get(result, "model", "Amyloid", "threshold")["value"] == 0.5
    y, s = table[key].to_numpy(), table[f"{key}_score"].to_numpy()
    assert _get(result, "model", key, "sensitivity@threshold")["value"] == pytest.approx(np.mean(s[y == 1] >= 0.2))
