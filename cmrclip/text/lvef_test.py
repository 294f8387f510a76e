from __future__ import annotations

import pytest

from cmrclip.text.lvef import extract_measurements


@pytest.mark.parametrize(
    ("text", "lvef", "method", "other"),
    [
        ("LVEF 55%.", 55, "unspecified", ()),
        ("LV EF: 62 %", 62, "unspecified", ()),
        ("The ejection fraction is 47 percent by volumetric analysis.", 47, "3d", ()),
        ("EF 55-60%.", 57.5, "unspecified", ()),
        ("LVEF approximately 25%.", 25, "unspecified", ()),
        ("LVEF 29% (biplane 31%).", 29, "unspecified", ()),
        ("LVEF 40% by biplane and 37% by short axis volumetry.", 37, "3d", ()),
        ("Biplane LVEF 52%. SAX volumetric LVEF 48%.", 48, "3d", ()),
        ("LVEF (biplane) 52%", 52, "biplane", ()),
        ("RVEF 50%. LVEF 58%.", 58, "unspecified", ()),
        ("LVEF 64%, RVEF 60%", 64, "unspecified", ()),
        ("LVEF 0.55", 55, "unspecified", ()),
        ("Normal LV function.", None, None, ()),
        ("RVEF 45%.", None, None, ()),
        ("LVEF forty-five percent.", 45, "unspecified", ()),
        ("The ejection fraction measures sixty per cent.", 60, "unspecified", ()),
        ("LVEF fifty to fifty-five percent.", 52.5, "unspecified", ()),
        ("LVEF: 0.45.", 45, "unspecified", ()),
        ("EF of approximately 35 %.", 35, "unspecified", ()),
        ("LV EF 47,5 %.", 47.5, "unspecified", ()),
        ("| LVEF (%) | 55 | 57-77 |", 55, "unspecified", ()),
        ("LV EF = 35% (normal range 57-77%).", 35, "unspecified", ()),
        ("LVEF 45% (previously 35% on 3 May).", 45, "unspecified", (35,)),
        ("The LV ejection fraction has improved from 30% to 45%.", 45, "unspecified", (30,)),
        ("Echocardiogram estimated the EF at 20%. LVEF 60%.", 60, "unspecified", (20,)),
        ("A nuclear MUGA scan gave an LVEF of 55%. Ejection fraction 71%.", 71, "unspecified", (55,)),
        (
            "Compared with the study of May 2019, when the LVEF was 45%, function has improved. EF 60%.",
            60,
            "unspecified",
            (45,),
        ),
        ("Compared with the prior study, LVEF is now 55%.", 55, "unspecified", ()),
        ("The ejection fraction was measured at 52% by volumetry.", 52, "3d", ()),
        ("Baseline LVEF before chemotherapy: 61%.", 61, "unspecified", ()),
        ("COMPARISON: Prior SPECT: EF 30%.\nFINDINGS: LVEF 53-58%.", 55.5, "unspecified", (30,)),
        ("Clinical details: TTE reported an EF of 35 percent.\nReport: normal LV size.", None, None, (35,)),
        ("RV: EF 33%. Right ventricular EF of 41%. LVEF 60%.", 60, "unspecified", ()),
    ],
)
def test_lvef(text, lvef, method, other):
    m = extract_measurements(text)
    assert m.lvef == lvef
    assert m.lvef_method == method
    assert m.lvef_other == other


def test_range_approximation_and_volumes():
    m = extract_measurements("LVEDV 265 mL (LVEDVi 140 mL/m2), LVESV 180 mL, LV mass 150 g. EF ~45-50%. RVEF 41%.")
    assert (m.lvef, m.lvef_low, m.lvef_high, m.lvef_approximate) == (47.5, 45, 50, True)
    assert (m.lvedv_ml, m.lvesv_ml, m.lv_mass_g, m.rvef) == (265, 180, 150, 41)
    assert m.to_dict()["lvef_values"] == [[47.5, "unspecified"]]


def test_implausible_percent_is_ignored():
    assert extract_measurements("EF 150%").lvef is None


def test_indexed_volumes_and_rvef_forms():
    m = extract_measurements("LVEDV 166 mL (87 mL/m2), LVESV 138 mL (LVESVi 72 mL/m2). RV: EF 53%.")
    assert (m.lvedv_ml, m.lvedvi_ml_m2, m.lvesv_ml, m.lvesvi_ml_m2, m.rvef) == (166, 87, 138, 72, 53)
    assert extract_measurements("LVEDVi 112 mL/m2, right ventricular EF of 48%").to_dict()["lvedvi_ml_m2"] == 112
