"""Reproduce the original paper's statistics from the authors' own exported predictions (shared data).

How the authors' numbers arose (R ``pROC``), established from the data themselves:
- AUROC with ``direction="auto"``: three cells are 1 - AUROC (listed in ``FLIPPED``); we never flip.
- 95 % CI by DeLong over all exported rows (the 3 duplicated studies included), symmetric and capped at [0, 1].
- ``p_val`` from ``roc.test``: the paired DeLong test pairing the two tables row by row when their label vectors are
  identical, and otherwise (12 conditions, where the collate's replaced rows broke the pairing) the unpaired DeLong
  test with Welch degrees of freedom. Neither table is re-ordered, as the authors did not re-order them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmrclip.evaluate.delong import delong_ci, delong_paired_test, delong_unpaired_test
from cmrclip.evaluate.evaluation import EvaluateConfig, evaluate_predictions
from cmrclip.evaluate.io import read_predictions, read_wandb_table
from cmrclip.evaluate.metrics import regression_metrics

# (condition, model) cells where pROC chose direction ">" so the published AUROC is 1 - ours.
FLIPPED = {
    ("Arrhythmogenic.right.ventricular.cardiomyopathy", "baseline"),
    ("Atrial.Myxoma", "baseline"),
    ("Atrial.Myxoma", "pretrained"),
}
FOLDERS = {"pretrained": "pretrained", "baseline": "kinetics_baseline"}


@pytest.fixture(scope="module")
def paper(shared_data):
    root = shared_data / "paper_predictions" / "internal_test"
    ref = pd.read_csv(root / "internal_test_auc_sig_results_combined.csv")
    tables = {}
    for target in ref["target"]:
        for model, folder in FOLDERS.items():
            frame = read_wandb_table(root / folder / f"{target}.table.json")
            tables[target, model] = (frame["labels"].astype(float).to_numpy(), frame["probs"].astype(float).to_numpy())
    return ref, tables


def test_auroc_and_delong_ci_match_the_authors(paper):
    ref, tables = paper
    assert len(ref) == 35
    checked = 0
    for _, row in ref.iterrows():
        for model in FOLDERS:
            y, s = tables[row["target"], model]
            ci = delong_ci(y, s)
            published = (row[f"auc_{model}"], row[f"lower_{model}"], row[f"upper_{model}"])
            if (row["target"], model) in FLIPPED:
                # pROC flipped a worse-than-chance model; we report it as it is.
                assert ci.auc < 0.5
                assert abs((1 - ci.auc) - published[0]) < 1e-4
                assert abs((1 - ci.lower) - published[2]) < 1e-4
                continue
            np.testing.assert_allclose((ci.auc, ci.lower, ci.upper), published, atol=1e-4, rtol=0)
            checked += 1
    assert checked == 2 * 35 - len(FLIPPED)


def _authors_test(y1, s1, y2, s2):
    if np.array_equal(y1, y2):
        return delong_paired_test(y1, s1, s2)
    return delong_unpaired_test(y1, s1, y2, s2)


def test_paired_delong_p_values_match_the_authors(paper):
    ref, tables = paper
    n_unpaired = 0
    for _, row in ref.iterrows():
        target = row["target"]
        (y1, s1), (y2, s2) = tables[target, "pretrained"], tables[target, "baseline"]
        n_unpaired += not np.array_equal(y1, y2)
        test = _authors_test(y1, s1, y2, s2)
        if (target, "pretrained") in FLIPPED or (target, "baseline") in FLIPPED:
            # Reproducible only with the authors' flipped direction, i.e. negated scores.
            sign1 = -1 if (target, "pretrained") in FLIPPED else 1
            sign2 = -1 if (target, "baseline") in FLIPPED else 1
            flipped = _authors_test(y1, sign1 * s1, y2, sign2 * s2)
            np.testing.assert_allclose(flipped.p_value, row["p_val"], rtol=1e-4)
            if sign1 != sign2:
                assert abs(test.p_value - row["p_val"]) > 0.1
            continue
        np.testing.assert_allclose(test.p_value, row["p_val"], rtol=1e-4, atol=1e-15)
    assert n_unpaired == 12


def test_kaggle_lvef_matches_reference(shared_data):
    root = shared_data / "paper_predictions" / "kaggle_lvef"
    ours = read_predictions(root / "pretrained.table.json").table
    m = regression_metrics(ours["lvef_pred"], ours["lvef"])
    assert m.n == 697
    assert round(m.mae, 3) == 6.880
    assert round(m.rmse, 3) == 8.688
    assert round(m.pearson_r, 3) == 0.780
    assert round(m.bias, 2) == -5.37
    base = read_predictions(root / "kinetics_baseline.table.json").table
    b = regression_metrics(base["lvef_pred"], base["lvef"])
    assert (round(b.mae, 3), round(b.rmse, 3), round(b.bias, 2), round(b.pearson_r, 3)) == (8.267, 10.757, -2.36, 0.318)


def test_evaluate_the_authors_folders_end_to_end(shared_data):
    root = shared_data / "paper_predictions" / "internal_test"
    model = read_predictions(root / "pretrained", duplicates="first")
    base = read_predictions(root / "kinetics_baseline", duplicates="first")
    assert len(model.table) == 1215 and len(model.targets) == 35
    assert len(model.notes) == 35  # every file had 3 duplicated rows
    table = evaluate_predictions(model, base, EvaluateConfig(duplicates="first"))
    macro = table[(table["target"] == "macro") & (table["metric"] == "auroc")].set_index("model")["value"]
    assert 0.6 < macro["baseline"] < macro["model"] < 0.9
    diff = table[(table["model"] == "difference") & (table["metric"] == "auroc")]
    assert len(diff) == 35 and diff["p_value"].between(0, 1).all()
    few = table[(table["model"] == "model") & (table["metric"] == "auroc") & table["flag"].str.contains("few")]
    expected = {t for t in model.targets if model.table[t].sum() < 10}
    assert "Atrial.Myxoma" in expected and set(few["target"]) == expected  # 7 positives
    ok = table[(table["model"] == "model") & (table["metric"] == "auroc") & (table["flag"] == "")]
    assert macro["model"] == pytest.approx(ok["value"].mean())


def test_cli_with_duplicates_kept_reproduces_every_unflipped_auroc_and_ci(shared_data, tmp_path):
    """`cmrclip evaluate --set duplicates=keep` on the authors' folders: their AUROCs and DeLong CIs, from the CLI."""
    from typer.testing import CliRunner

    from cmrclip.cli import app

    root = shared_data / "paper_predictions" / "internal_test"
    args = ["evaluate", str(root / "pretrained"), "--baseline", str(root / "kinetics_baseline")]
    result = CliRunner().invoke(app, [*args, "--set", "duplicates=keep", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(tmp_path / "metrics.csv")
    got = got[got["metric"] == "auroc"].set_index(["model", "target"])
    ref = pd.read_csv(root / "internal_test_auc_sig_results_combined.csv")
    checked = 0
    for _, row in ref.iterrows():
        for model, ours in (("pretrained", "model"), ("baseline", "baseline")):
            if (row["target"], model) in FLIPPED:
                continue
            cell = got.loc[(ours, row["target"])]
            published = (row[f"auc_{model}"], row[f"lower_{model}"], row[f"upper_{model}"])
            np.testing.assert_allclose((cell["value"], cell["lower"], cell["upper"]), published, atol=1e-4, rtol=0)
            checked += 1
    assert checked == 2 * 35 - len(FLIPPED)
    assert got.loc[("model", "Amyloid"), "n"] == 1215 + 3  # the 3 duplicated rows count, as in the authors' tables
    report = (tmp_path / "report.html").read_text()
    assert "duplicated study ids kept as separate rows" in report
