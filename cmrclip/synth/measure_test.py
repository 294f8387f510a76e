from __future__ import annotations

import numpy as np
import pytest

from cmrclip.synth.anatomy import HeartParams, heart_state
from cmrclip.synth.measure import measure_heart


def test_measure_heart_matches_analytic_volumes():
    p = HeartParams(edv=150.0, esv=60.0, wall=8.0, papillary=0.0)
    m = measure_heart(p, 20)
    assert m["lvedv_ml"] == pytest.approx(150.0, rel=0.01)
    assert m["lvesv_ml"] == pytest.approx(60.0, rel=0.01)
    st = heart_state(p, 20)
    myo_ml = 2 * np.pi / 3 * (st.outer_a[0] ** 2 * st.outer_c[0] - st.a[0] ** 2 * st.c[0]) / 1000
    assert m["lv_mass_g"] == pytest.approx(1.05 * myo_ml, rel=0.02)
    assert 40 < m["rvef"] < 70 and 100 < m["rvedv_ml"] < 220
    with_papillary = measure_heart(HeartParams(edv=150.0, esv=60.0, wall=8.0), 20)
    assert 0.96 * m["lvedv_ml"] < with_papillary["lvedv_ml"] < 0.995 * m["lvedv_ml"]
    assert with_papillary["lv_mass_g"] > m["lv_mass_g"]
