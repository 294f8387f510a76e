from __future__ import annotations

import numpy as np
import pytest

from cmrclip.errors import DataError
from cmrclip.evaluate.agreement import scan_rescan_agreement


def test_agreement_recovers_variance_components():
    rng = np.random.default_rng(0)
    subject = rng.normal(55, 10, 5000)
    first, second = subject + rng.normal(0, 2, 5000), subject + rng.normal(0, 2, 5000)
    a = scan_rescan_agreement(first, second)
    assert a.icc == pytest.approx(100 / 104, abs=0.01)
    assert a.within_sd == pytest.approx(2.0, rel=0.05)
    assert a.cov_percent == pytest.approx(100 * 2 / 55, rel=0.05)
    assert a.pearson_r == pytest.approx(np.corrcoef(first, second)[0, 1])


def test_systematic_offset_lowers_icc_but_not_r():
    rng = np.random.default_rng(1)
    x = rng.normal(50, 10, 300)
    same = scan_rescan_agreement(x, x + rng.normal(0, 1, 300))
    shifted = scan_rescan_agreement(x, x + 10 + rng.normal(0, 1, 300))
    assert shifted.pearson_r == pytest.approx(same.pearson_r, abs=0.01)
    assert shifted.icc < same.icc - 0.2
    assert shifted.mean_difference == pytest.approx(10, abs=0.3)


def test_agreement_bad_input():
    with pytest.raises(DataError, match="pair"):
        scan_rescan_agreement(np.ones(4), np.ones(5))
    with pytest.raises(DataError, match="NaN"):
        scan_rescan_agreement(np.array([1, 2, np.nan]), np.array([1, 2, 3.0]))
    with pytest.raises(DataError, match="constant"):
        scan_rescan_agreement(np.ones(5), np.arange(5.0))
