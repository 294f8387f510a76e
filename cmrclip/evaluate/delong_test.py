from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cmrclip.errors import DataError, LabelError
from cmrclip.evaluate.delong import delong_ci, delong_covariance, delong_paired_test, delong_unpaired_test


def _slow_delong(y, s1, s2):
    """O(m n) textbook DeLong (1988) with the Mann-Whitney kernel, for checking the fast algorithm."""
    out = []
    for s in (s1, s2):
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    v10 = np.stack([o[1] for o in out])
    v01 = np.stack([o[2] for o in out])
    cov = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    return np.array([o[0] for o in out]), cov


def test_fast_delong_equals_the_textbook_form_with_ties():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(float)
    s1 = np.round(rng.normal(size=300) + y, 1)
    s2 = np.round(s1 + rng.normal(size=300), 1)
    auc, cov = delong_covariance(y, np.stack([s1, s2]))
    auc_ref, cov_ref = _slow_delong(y, s1, s2)
    np.testing.assert_allclose(auc, auc_ref, atol=1e-12)
    np.testing.assert_allclose(cov, cov_ref, atol=1e-14)


def test_delong_variance_matches_bootstrap_within_monte_carlo_error():
    rng = np.random.default_rng(1)
    n, n_boot = 400, 2000
    y = (rng.random(n) < 0.3).astype(float)
    s = rng.normal(size=n) + 1.0 * y
    ci = delong_ci(y, s)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        xp, xn = s[rng.choice(pos, pos.size)], s[rng.choice(neg, neg.size)]
        ranks = stats.rankdata(np.r_[xp, xn])
        boot[b] = (ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size)
    # the relative standard error of a sample variance from n_boot draws is about sqrt(2 / n_boot) = 3.2 %
    assert boot.var(ddof=1) == pytest.approx(ci.variance, rel=4 * np.sqrt(2 / n_boot))


def test_ci_is_clipped_and_covers():
    y = np.array([0, 0, 0, 1, 1, 1.0])
    ci = delong_ci(y, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))
    assert ci.auc == 1.0 and ci.upper == 1.0 and ci.lower <= 1.0


def test_paired_test_identical_models_and_null_calibration():
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.3).astype(float)
    s = rng.normal(size=200) + y
    same = delong_paired_test(y, s, s)
    assert same.p_value == 1.0 and same.difference == 0.0
    # under the null (two equally good, independent models) p-values are roughly uniform
    p = []
    for _ in range(200):
        y = (rng.random(150) < 0.4).astype(float)
        p.append(delong_paired_test(y, rng.normal(size=150) + y, rng.normal(size=150) + y).p_value)
    assert 0.02 < np.mean(np.array(p) < 0.05) < 0.10


def test_paired_test_detects_a_better_model():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(float)
    test = delong_paired_test(y, rng.normal(size=500) + 2 * y, rng.normal(size=500) + 0.3 * y)
    assert test.difference > 0 and test.p_value < 1e-6 and test.paired


def test_unpaired_test_uses_welch_df():
    rng = np.random.default_rng(4)
    y1, y2 = (rng.random(300) < 0.3).astype(float), (rng.random(250) < 0.3).astype(float)
    test = delong_unpaired_test(y1, rng.normal(size=300) + y1, y2, rng.normal(size=250) + y2)
    assert not test.paired and 1 < test.df < 300 + 250 and 0 < test.p_value <= 1


def test_bad_inputs():
    with pytest.raises(DataError, match="same cases"):
        delong_paired_test(np.array([0, 1.0]), np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(LabelError, match="one class"):
        delong_ci(np.zeros(5), np.arange(5.0))
    with pytest.raises(DataError, match="unknowns"):
        delong_covariance(np.array([0, 1, np.nan]), np.array([0.1, 0.2, 0.3]))


def test_variance_needs_two_of_each_class():
    with pytest.raises(LabelError, match="at least 2 positives"):
        delong_ci(np.array([0, 0, 0, 1.0]), np.array([0.1, 0.2, 0.3, 0.4]))
