from __future__ import annotations

import numpy as np
import pytest

from cmrclip.synth.anatomy import HeartParams, Tissue, heart_labels, heart_state, volume_curve


@pytest.mark.parametrize("n_phases", [6, 20, 25, 50])
def test_volume_curve_ed_es_and_smooth(n_phases):
    phase, s, k_es = volume_curve(n_phases, 0.37)
    assert s[0] == 0 and s[k_es] == pytest.approx(1.0)
    assert s.min() >= 0 and s.max() <= 1 + 1e-12
    assert np.argmax(s) == k_es
    # systole monotone, then filling
    assert np.all(np.diff(s[: k_es + 1]) > 0)
    assert np.all(np.diff(s[k_es:]) <= 1e-12)
    assert phase[0] == 0 and phase[-1] < 1


def test_lv_volume_exact_and_myocardium_conserved():
    p = HeartParams(edv=160.0, esv=60.0, wall=9.0)
    st = heart_state(p, 30)
    vol = 2 * np.pi / 3 * st.a**2 * st.c / 1000
    assert vol.max() == pytest.approx(160.0)
    assert vol.min() == pytest.approx(60.0)
    myo = 2 * np.pi / 3 * (st.outer_a**2 * st.outer_c - st.a**2 * st.c)
    np.testing.assert_allclose(myo, myo[0], rtol=1e-9)
    wall = st.outer_a - st.a
    assert wall[np.argmax(st.systole)] > wall[0] + 2.0  # systolic thickening


def test_septal_hypertrophy_thickens_septum_not_lateral_wall():
    def thickness(p: HeartParams, direction: float) -> float:
        st = heart_state(p, 4)
        r = np.arange(0, 70, 0.25)
        q = np.stack([direction * r, 0 * r, np.full_like(r, -30.0)], axis=1)
        lab = np.zeros((4, len(r)), dtype=np.uint8)
        heart_labels(p, st, q, lab)
        return float((lab[0] == Tissue.LV_MYO).sum() * 0.25)

    normal, hcm = HeartParams(), HeartParams(septal_extra=12.0)
    assert thickness(hcm, +1) > thickness(normal, +1) + 8  # septum (+x)
    assert thickness(hcm, -1) == pytest.approx(thickness(normal, -1), abs=1.0)  # lateral wall


def test_effusion_puts_fluid_round_the_heart():
    q = np.stack([-np.arange(20, 80, 0.5), np.zeros(120), np.full(120, -40.0)], axis=1)
    for effusion, expect in ((0.0, 0), (15.0, 20)):
        p = HeartParams(effusion=effusion)
        lab = np.zeros((2, len(q)), dtype=np.uint8)
        heart_labels(p, heart_state(p, 2), q, lab)
        assert (lab[0] == Tissue.FLUID).sum() >= expect
        if not effusion:
            assert (lab == Tissue.FLUID).sum() == 0
