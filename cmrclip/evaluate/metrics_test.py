from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from cmrclip.errors import DataError, LabelError
from cmrclip.evaluate import metrics as M


def _data(seed=0, n=500, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    s = rng.normal(size=n) + y
    if ties:
        s = np.round(s, 1)
    return y, s


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_auprc_roc_agree_with_sklearn(ties):
    y, s = _data(1, ties=ties)
    assert M.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.auprc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    ours = M.roc_curve(y, s)
    np.testing.assert_allclose(ours.fpr, fpr)
    np.testing.assert_allclose(ours.tpr, tpr)


def test_orientation_is_fixed_never_flipped():
    y, s = _data(2)
    assert M.auroc(y, -s) == pytest.approx(1 - M.auroc(y, s))
    assert M.auroc(y, -s) < 0.5


def test_sens_spec_and_youden():
    y, s = _data(3)
    t = 0.3
    pred = s >= t
    sens, spec = M.sens_spec(y, s, t)
    assert sens == pytest.approx(skm.recall_score(y, pred))
    assert spec == pytest.approx(skm.recall_score(1 - y, ~pred))
    best = M.youden_threshold(y, s)
    j_best = sum(M.sens_spec(y, s, best)) - 1
    for cand in np.unique(s):
        assert sum(M.sens_spec(y, s, cand)) - 1 <= j_best + 1e-12


def test_unknown_labels_are_ignored():
    y, s = _data(4)
    y_unknown = y.copy()
    y_unknown[:50] = np.nan
    assert M.auroc(y_unknown, s) == pytest.approx(skm.roc_auc_score(y[50:], s[50:]))


@pytest.mark.parametrize(
    ("labels", "scores", "error", "text"),
    [
        ([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4], LabelError, "must be 0 or 1"),
        ([0.5, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], LabelError, "must be 0 or 1"),
        ([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], LabelError, "only one class"),
        ([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4], DataError, "NaN score"),
        ([0, 1, 0, 1], [0.1, np.inf, 0.3, 0.4], DataError, "infinite"),
        ([0, 1, 0], [0.1, 0.2, 0.3, 0.4], DataError, "3 labels but 4 scores"),
    ],
)
def test_bad_binary_input_raises_clear_errors(labels, scores, error, text):
    with pytest.raises(error, match=text):
        M.auroc(np.array(labels, dtype=float), np.array(scores))


def test_nan_scores_can_be_dropped_and_counted():
    data = M.check_binary(np.array([0, 1, 0, 1.0]), np.array([0.1, np.nan, 0.3, 0.4]), drop_nan_scores=True)
    assert data.n_dropped_nan_scores == 1 and data.labels.size == 3


def test_regression_metrics_agree_with_sklearn_and_definitions():
    rng = np.random.default_rng(5)
    true = rng.uniform(20, 70, 400)
    pred = true + rng.normal(2, 4, 400)
    m = M.regression_metrics(pred, true)
    assert m.mae == pytest.approx(skm.mean_absolute_error(true, pred))
    assert m.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(true, pred)))
    assert m.r2 == pytest.approx(skm.r2_score(true, pred))
    assert m.pearson_r == pytest.approx(np.corrcoef(true, pred)[0, 1])
    assert m.bias == pytest.approx(np.mean(pred - true))
    assert m.loa_upper - m.loa_lower == pytest.approx(2 * 1.959964 * np.std(pred - true, ddof=1), rel=1e-6)
    inside = np.mean((pred - true >= m.loa_lower) & (pred - true <= m.loa_upper))
    assert 0.92 < inside < 0.98


def test_regression_metrics_bad_input():
    with pytest.raises(DataError, match="NaN"):
        M.regression_metrics(np.array([1.0, np.nan, 3, 4]), np.array([1.0, 2, 3, 4]))
    with pytest.raises(DataError, match="at least 3"):
        M.regression_metrics(np.array([1.0, 2]), np.array([1.0, 2]))
    m = M.regression_metrics(np.array([50.0, 50, 50, 50]), np.array([40.0, 45, 55, 60]))
    assert np.isnan(m.pearson_r) and m.mae == 7.5


def test_lvef_threshold_auroc_lower_prediction_is_positive():
    true = np.array([25, 35, 45, 55, 65, 30.0])
    pred = np.array([28, 33, 47, 50, 60, 45.0])
    assert M.lvef_threshold_auroc(pred, true, 40) == pytest.approx(skm.roc_auc_score(true < 40, -pred))
