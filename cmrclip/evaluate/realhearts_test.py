"""Scoring on real hearts: folds by patient, the one-split check, the ridge heads, the metrics table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmrclip.errors import DataError
from cmrclip.evaluate import realhearts
from cmrclip.evaluate.realhearts import check_one_split, fit_ridge, stratified_folds


def test_folds_are_stratified_by_group_and_seeded():
    subjects = [f"patient{i:03d}" for i in range(40)]
    groups = ["DCM", "HCM", "MINF", "NOR", "RV"] * 8
    folds = stratified_folds(subjects, groups, 5, seed=0)
    for k in range(5):
        members = [g for g, f in zip(groups, folds, strict=True) if f == k]
        assert len(members) == 8 and all(members.count(g) in (1, 2) for g in set(groups))
    assert not np.array_equal(folds, stratified_folds(subjects, groups, 5, seed=1))
    with pytest.raises(DataError, match="once"):
        stratified_folds(["a", "a", "b"], [None] * 3, 2, 0)


def test_one_split_check_fails_when_a_test_subject_trained_anything():
    check = check_one_split({"realistic cohort": {"patient001"}}, {"patient061"})
    assert check["passed"] and check["evaluated"] == ["patient061"]
    with pytest.raises(DataError, match=r"used by the realistic cohort: \['patient061'\]"):
        check_one_split({"pretraining": set(), "realistic cohort": {"patient001", "patient061"}}, {"patient061"})


def test_ridge_heads_fit_a_line_and_separate_classes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    y = 50 + 10 * x[:, 0] - 5 * x[:, 2]
    head = fit_ridge(x, list(y), alpha=1e-4)
    np.testing.assert_allclose(head.regress(x[:3]), y[:3], atol=0.1)
    labels = ["HCM" if v > 0 else "DCM" for v in x[:, 1]]
    assert fit_ridge(x, labels, alpha=0.1).classify(x) == labels
    with pytest.raises(DataError):
        fit_ridge(x[:1], [1.0])


def test_score_table_and_ood_auroc():
    rows = [("acdc_cine", f"p{i}", "analytic", "zero_label", 50.0 + i, 52.0 + i, "NOR", "NOR" if i else "DCM")
            for i in range(4)]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(realhearts.PREDICTION_COLUMNS))
    cell = realhearts.score_table(table)["zero_label"]["analytic"]["all"]
    assert cell["n"] == 4 and cell["lvef_mae"] == pytest.approx(2.0) and cell["lvef_bias"] == pytest.approx(2.0)
    assert cell["group_accuracy"] == pytest.approx(0.75)
    assert realhearts.ood_auroc([2.0, 3.0], [0.5, 0.9, 2.5]) == pytest.approx(5 / 6)
