from __future__ import annotations

import numpy as np
import pytest

from cmrclip.errors import ConfigError, DataError
from cmrclip.evaluate.conformal import empirical_coverage, fit_conformal


@pytest.mark.parametrize("alpha", [0.1, 0.2])
@pytest.mark.parametrize("noise", ["normal", "heavy"])
def test_split_conformal_coverage_is_nominal(alpha, noise):
    rng = np.random.default_rng(0)
    n = 12000
    true = rng.uniform(15, 75, n)
    err = rng.normal(0, 6, n) if noise == "normal" else 4 * rng.standard_t(2, n)
    pred = 0.8 * true + 10 + err
    conf = fit_conformal(pred[:2000], true[:2000], alpha)
    lo, hi = conf.interval(pred[2000:])
    coverage = empirical_coverage(lo, hi, true[2000:])
    assert abs(coverage - (1 - alpha)) < 0.03


def test_conformal_quantile_rule_and_errors():
    pred, true = np.zeros(9), np.arange(1, 10, dtype=float)
    assert fit_conformal(pred, true, alpha=0.2).half_width == 8.0  # ceil(10 * 0.8) = 8th smallest residual
    with pytest.raises(DataError, match="too few"):
        fit_conformal(pred, true, alpha=0.05)
    with pytest.raises(ConfigError):
        fit_conformal(pred, true, alpha=0)
    with pytest.raises(DataError, match="NaN"):
        fit_conformal(np.array([np.nan, 1, 2]), np.array([1.0, 2, 3]))
