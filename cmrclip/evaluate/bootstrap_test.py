from __future__ import annotations

import numpy as np
import pytest

from cmrclip.errors import ConfigError, DataError
from cmrclip.evaluate.bootstrap import bootstrap_ci, stratified_bootstrap_ci
from cmrclip.evaluate.delong import delong_ci
from cmrclip.evaluate.metrics import auroc


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(float)
    return y, rng.normal(size=n) + y


def test_stratified_bootstrap_auroc_ci_is_seeded_and_close_to_delong():
    y, s = _data()
    a = stratified_bootstrap_ci(y, s, auroc, np.random.default_rng(7), n_boot=400)
    b = stratified_bootstrap_ci(y, s, auroc, np.random.default_rng(7), n_boot=400)
    assert a == b
    dl = delong_ci(y, s)
    assert a.estimate == pytest.approx(dl.auc)
    assert a.lower < a.estimate < a.upper
    assert a.std == pytest.approx(np.sqrt(dl.variance), rel=0.2)


def test_stratified_resamples_keep_class_counts():
    y, s = _data(60)
    seen = []

    def metric(labels, scores):
        seen.append(int(labels.sum()))
        return auroc(labels, scores)

    stratified_bootstrap_ci(y, s, metric, np.random.default_rng(0), n_boot=20)
    assert set(seen) == {int(y.sum())}


def test_plain_bootstrap_of_mae():
    rng = np.random.default_rng(1)
    err = rng.normal(0, 5, 500)
    ci = bootstrap_ci(lambda e: float(np.abs(e).mean()), (err,), np.random.default_rng(2), n_boot=500)
    se = np.abs(err).std(ddof=1) / np.sqrt(err.size)
    assert ci.std == pytest.approx(se, rel=0.15)
    assert ci.lower < ci.estimate < ci.upper


def test_bootstrap_bad_input():
    y, s = _data()
    with pytest.raises(ConfigError):
        stratified_bootstrap_ci(y, s, auroc, np.random.default_rng(0), n_boot=1)
    with pytest.raises(ConfigError):
        bootstrap_ci(np.mean, (s,), np.random.default_rng(0), alpha=1.5)
    with pytest.raises(DataError, match="equal length"):
        bootstrap_ci(lambda a, b: 0.0, (s, s[:-1]), np.random.default_rng(0))
