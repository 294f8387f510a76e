from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from cmrclip.conditions import condition_keys, load_conditions
from cmrclip.synth.anatomy import HeartParams, Tissue, heart_state
from cmrclip.synth.artefacts import overlay
from cmrclip.synth.measure import measure_heart
from cmrclip.synth.phenotypes import PREVALENCE, heart_params, sample_conditions
from cmrclip.synth.render import CONTRAST, make_geometry, plan_views, render_labels
from cmrclip.synth.sites import get_sites

SITE = get_sites(["northfield"], matrix=80, phases=5)[0]
LUT = np.zeros(256, dtype=np.float32)
for _tissue, _value in CONTRAST.items():
    LUT[int(_tissue)] = _value


def _noise_free(params: HeartParams) -> dict[str, list[np.ndarray]]:
    """Noise-free images (contrast x flow/metal overlay) of every plane, at a fixed geometry."""
    st = heart_state(params, 5)
    geo = make_geometry(np.random.default_rng(0))
    out = {}
    for view, planes in plan_views(params, st, geo, SITE).items():
        images = []
        for plane in planes:
            labels = render_labels(params, st, geo, plane)
            images.append(LUT[labels] * overlay(plane.points(), labels, params, st, geo))
        out[view] = images
    return out


@cache
def _normal() -> dict[str, list[np.ndarray]]:
    return _noise_free(heart_params([], np.random.default_rng(11))[0])


def _changed_pixels(key: str) -> int:
    params, _ = heart_params([key], np.random.default_rng(11))
    normal, sick = _normal(), _noise_free(params)
    changed = 0
    for view in ("2CH", "3CH", "4CH"):
        changed += int((np.abs(sick[view][0] - normal[view][0]) > 0.1).sum())
    n = min(len(normal["SAX"]), len(sick["SAX"]))
    changed += sum(int((np.abs(sick["SAX"][i] - normal["SAX"][i]) > 0.1).sum()) for i in range(n))
    return changed


@pytest.mark.slow
def test_each_cine_visible_condition_leaves_a_signature_and_weak_ones_none():
    missing, leaked = [], []
    for cond in load_conditions():
        changed = _changed_pixels(cond.key)
        if cond.cine_visible and changed < 20:
            missing.append((cond.key, changed))
        if not cond.cine_visible and changed:
            leaked.append((cond.key, changed))
    assert not missing, f"no visible signature: {missing}"
    assert not leaked, f"weak conditions changed the images: {leaked}"


def test_prevalence_skewed_and_most_studies_have_few_conditions():
    keys = condition_keys()
    assert set(PREVALENCE) == set(keys)
    rng = np.random.default_rng(0)
    draws = [sample_conditions(rng, keys) for _ in range(2000)]
    sizes = np.array([len(d) for d in draws])
    assert (sizes == 0).mean() > 0.3 and (sizes <= 2).mean() > 0.8
    counts = {k: sum(k in d for d in draws) for k in keys}
    assert counts["Ischemic.Cardiomyopathy"] > 4 * counts["Atrial.Myxoma"]
    assert all(counts[k] > 0 for k in keys)
    # co-occurrence: SAM comes with HCM, a prosthetic valve with previous surgery
    assert all("Hypertrophic.Cardiomyopathy" in d for d in draws if "Systolic.Anterior.Motion.of.Mitral" in d)
    assert all("Previous.Surgery" in d for d in draws if "Prosthetic.Valve" in d)


def _measures(conditions: list[str], seed: int) -> dict[str, float]:
    return measure_heart(heart_params(conditions, np.random.default_rng(seed))[0], 6, step=1.5)


@pytest.mark.parametrize("seed", [1, 2])
def test_function_and_size_signatures_in_the_numbers(seed):
    normal = _measures([], seed)
    assert 52 <= normal["lvef"] <= 75 and normal["lvedv_ml"] <= 205
    assert _measures(["Left.Ventricular.Dilation"], seed)["lvedv_ml"] > 215
    assert _measures(["Non.Ischemic.cardiomyopathy"], seed)["lvef"] < 45
    assert _measures(["Ischemic.Cardiomyopathy"], seed)["lvef"] < 48
    assert _measures(["Right.Ventricular.Dilation"], seed)["rvedv_ml"] > 1.2 * normal["rvedv_ml"]
    assert _measures(["Left.Ventricular.Hypertrophy"], seed)["lv_mass_g"] > 1.3 * normal["lv_mass_g"]
    assert _measures(["Arrhythmogenic.right.ventricular.cardiomyopathy"], seed)["rvef"] < normal["rvef"] - 8


def test_hcm_septum_and_effusion_in_the_images():
    rng = np.random.default_rng(4)
    hcm, _ = heart_params(["Hypertrophic.Cardiomyopathy"], rng)
    assert hcm.septal_extra >= 8
    eff, _ = heart_params(["Large.Pericardial.Effusion"], np.random.default_rng(4))
    st = heart_state(eff, 6)
    geo = make_geometry(np.random.default_rng(0))
    labels = render_labels(eff, st, geo, plan_views(eff, st, geo, SITE)["4CH"][0])
    assert (labels == Tissue.FLUID).sum() > 200


def test_mitral_regurgitation_jet_only_in_systole():
    params, _ = heart_params(["Severe.Mitral.Regurgitation"], np.random.default_rng(3))
    st = heart_state(params, 10)
    geo = make_geometry(np.random.default_rng(0))
    plane = plan_views(params, st, geo, SITE)["3CH"][0]
    labels = render_labels(params, st, geo, plane)
    mult = overlay(plane.points(), labels, params, st, geo)
    dark = ((mult < 0.6) & (labels == Tissue.LA_BLOOD)).sum(axis=(1, 2))
    systolic = st.phase <= params.es_fraction
    assert dark[systolic].min() > 5 and dark[~systolic & (st.phase > params.es_fraction + 0.05)].max() == 0
