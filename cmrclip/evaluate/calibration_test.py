from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression

from cmrclip.errors import DataError
from cmrclip.evaluate.calibration import (
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    reliability_curve,
)


def _calibrated(n=20000, seed=0, temperature=1.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < special.expit(z / temperature)).astype(float)
    return y, special.expit(z)


def test_reliability_curve_agrees_with_sklearn():
    y, p = _calibrated(3000)
    ours = reliability_curve(y, p, n_bins=10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(ours.observed_rate, prob_true)
    np.testing.assert_allclose(ours.mean_predicted, prob_pred)


def test_ece_small_when_calibrated_large_when_not():
    y, p = _calibrated()
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, p**3) > 0.1
    # by hand for two bins
    assert expected_calibration_error(np.array([0, 1, 1, 1.0]), np.array([0.2, 0.2, 0.9, 0.9]), 2) == pytest.approx(
        (2 * abs(0.5 - 0.2) + 2 * abs(1.0 - 0.9)) / 4
    )


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece():
    y, p = _calibrated(temperature=2.0, seed=1)
    scaler = fit_temperature(y, p)
    assert scaler.temperature == pytest.approx(2.0, rel=0.08)
    assert expected_calibration_error(y, scaler(p)) < expected_calibration_error(y, p) / 3


def test_platt_matches_sklearn_logistic_regression():
    y, p = _calibrated(5000, seed=2, temperature=1.5)
    platt = fit_platt(y, p)
    ref = LogisticRegression(C=1e10, tol=1e-10, max_iter=1000).fit(special.logit(p)[:, None], y)
    assert platt.slope == pytest.approx(ref.coef_[0, 0], abs=1e-3)
    assert platt.intercept == pytest.approx(ref.intercept_[0], abs=1e-3)


def test_probabilities_outside_unit_interval_are_refused():
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        expected_calibration_error(np.array([0, 1.0]), np.array([-0.5, 2.0]))
