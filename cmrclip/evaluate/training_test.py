from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cmrclip.errors import DataError
from cmrclip.evaluate.training import (
    headline_scores,
    plot_training_curves,
    recall_columns,
    training_figure,
    zeroshot_summary,
)


def _table(seed: int = 0, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lvef = rng.uniform(20, 70, n)
    table = {"lvef": lvef, "lvef_pred": lvef + rng.normal(0, 5, n)}
    for key, shift in (("Amyloid", 1.5), ("Tetralogy", 0.5), ("Myocarditis", 0.0)):
        y = (rng.random(n) < 0.3).astype(float)
        table[key], table[f"{key}_score"] = y, y * shift + rng.normal(0, 1, n)
    frame = pd.DataFrame(table)
    frame.loc[:9, "Amyloid"] = np.nan  # unknown labels are left out, not counted as negatives
    return frame


def test_headline_scores_match_direct_computation():
    table = _table()
    scores = headline_scores(table)
    known = table["Amyloid"].notna()
    aurocs = [roc_auc_score(table.loc[known, "Amyloid"], table.loc[known, "Amyloid_score"])]
    aurocs += [roc_auc_score(table[k], table[f"{k}_score"]) for k in ("Tetralogy", "Myocarditis")]
    assert scores["macro_auroc"][0] == pytest.approx(np.mean(aurocs))
    assert scores["lvef_mae"][0] == pytest.approx(np.mean(np.abs(table["lvef_pred"] - table["lvef"])))
    assert scores["macro_auroc_conditions"][0] == 3
    for name in ("macro_auroc", "lvef_mae"):
        value, lower, upper = scores[name]
        assert lower < value < upper


def test_headline_macro_auroc_leaves_out_conditions_with_few_positives():
    table = _table()
    table.loc[table.index[1:], "Tetralogy"] = 0.0  # a single positive: evaluate flags it and leaves it out
    scores = headline_scores(table)
    known = table["Amyloid"].notna()
    aurocs = [roc_auc_score(table.loc[known, "Amyloid"], table.loc[known, "Amyloid_score"])]
    aurocs += [roc_auc_score(table["Myocarditis"], table["Myocarditis_score"])]
    assert scores["macro_auroc"][0] == pytest.approx(np.mean(aurocs))
    assert scores["macro_auroc_conditions"][0] == 2


def test_headline_scores_one_class_label_is_skipped_and_tiny_tables_have_no_ci():
    table = _table().head(3)
    table["Amyloid"], table["Tetralogy"], table["Myocarditis"] = 0.0, 0.0, 0.0
    scores = headline_scores(table)
    assert math.isnan(scores["macro_auroc"][0])
    assert not math.isnan(scores["lvef_mae"][0])


def test_zeroshot_summary_has_every_metric_beside_random():
    table = _table()
    out = zeroshot_summary(table, _table(seed=1), {"video_to_text_r@5": 0.4}, {"video_to_text_r@5": 0.1})
    assert list(out["metric"]) == ["lvef_mae", "macro_auroc", "macro_auroc_conditions", "video_to_text_r@5"]
    assert out.loc[3, "random_encoder"] == pytest.approx(0.1)
    visible_only = zeroshot_summary(table.drop(columns=["Myocarditis_score"]), table, {}, {})
    assert len(visible_only) == 3


def test_training_curves_plot_and_errors(tmp_path):
    records = [{"step": s, "loss": 3.0 - s / 10, "temperature": 0.07, "video_to_text_r@5": s / 20} for s in range(1, 6)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    png = plot_training_curves(path, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.DataFrame(records)
    recall = training_figure(table).axes[2]
    assert [line.get_label() for line in recall.lines] == ["video_to_text_r@5"]  # the held-out recall is drawn
    assert recall_columns(table) == ["video_to_text_r@5"]
    empty = training_figure(table.drop(columns=["video_to_text_r@5"])).axes[2]
    assert not empty.lines and "no held-out recall" in empty.texts[0].get_text()  # an empty panel says why
    with pytest.raises(DataError, match="no training metrics"):
        plot_training_curves(tmp_path / "missing.jsonl", tmp_path / "x.png")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="holds no records"):
        plot_training_curves(tmp_path / "empty.jsonl", tmp_path / "x.png")
