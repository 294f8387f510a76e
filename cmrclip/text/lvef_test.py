from __future__ import annotations

import pytest

from cmrclip.text.lvef import extract_measurements


@pytest.mark.parametrize(
    ("text", "lvef", "method"),
    [
        ("LVEF 55%.", 55, "unspecified"),
        ("LV EF: 62 %", 62, "unspecified"),
        ("The ejection fraction is 47 percent by volumetric analysis.", 47, "3d"),
        ("EF 55-60%.", 57.5, "unspecified"),
        ("LVEF approximately 25%.", 25, "unspecified"),
        ("LVEF 29% (biplane 31%).", 29, "unspecified"),
        ("LVEF 40% by biplane and 37% by short axis volumetry.", 37, "3d"),
        ("Biplane LVEF 52%. SAX volumetric LVEF 48%.", 48, "3d"),
        ("LVEF (biplane) 52%", 52, "biplane"),
        ("RVEF 50%. LVEF 58%.", 58, "unspecified"),
        ("LVEF 64%, RVEF 60%", 64, "unspecified"),
        ("LVEF 0.55", 55, "unspecified"),
        ("Normal LV function.", None, None),
        ("RVEF 45%.", None, None),
    ],
)
def test_lvef(text, lvef, method):
    m = extract_measurements(text)
    assert m.lvef == lvef
    assert m.lvef_method == method


def test_range_approximation_and_volumes():
    m = extract_measurements("LVEDV 265 mL (LVEDVi 140 mL/m2), LVESV 180 mL, LV mass 150 g. EF ~45-50%. RVEF 41%.")
    assert (m.lvef, m.lvef_low, m.lvef_high, m.lvef_approximate) == (47.5, 45, 50, True)
    assert (m.lvedv_ml, m.lvesv_ml, m.lv_mass_g, m.rvef) == (265, 180, 150, 41)
    assert m.to_dict()["lvef_values"] == [[47.5, "unspecified"]]


def test_implausible_percent_is_ignored():
    assert extract_measurements("EF 150%").lvef is None
