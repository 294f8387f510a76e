from __future__ import annotations

import numpy as np
import pytest

from cmrclip.synth.anatomy import Tissue, heart_state
from cmrclip.synth.measure import measure_heart
from cmrclip.synth.phenotypes import heart_params
from cmrclip.synth.render import make_geometry, plan_views, render_image, render_labels
from cmrclip.synth.sites import get_sites

CASES = [
    [],
    ["Left.Ventricular.Dilation"],
    ["Hypertrophic.Cardiomyopathy"],
    ["Ischemic.Cardiomyopathy", "Cardiac.Thrombus"],
    ["LV.Aneurysm"],
    ["LV.Non.Compaction"],
    ["Amyloid", "Large.Pericardial.Effusion"],
]


def _sax_volumes(conditions: list[str], site_key: str, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    site = get_sites([site_key], phases=6)[0]
    params, _ = heart_params(conditions, np.random.default_rng(seed))
    st = heart_state(params, 6)
    geo = make_geometry(np.random.default_rng(seed + 1))
    sax = plan_views(params, st, geo, site)["SAX"]
    spacing = float(np.linalg.norm(sax[1].position - sax[0].position))
    counts = sum((render_labels(params, st, geo, pl) == Tissue.LV_BLOOD).sum(axis=(1, 2)) for pl in sax)
    return counts * sax[0].spacing ** 2 * spacing / 1000.0, measure_heart(params, 10)


SITE_CASES = [(c, ("northfield", "riverside", "hillcrest")[i % 3]) for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("case", "site"), SITE_CASES)
def test_lv_volumes_from_sax_masks_match_ground_truth(case, site):
    volumes, truth = _sax_volumes(case, site, seed=len(case) + 3)
    edv, esv = volumes.max(), volumes.min()
    assert edv == pytest.approx(truth["lvedv_ml"], rel=0.05)
    assert esv == pytest.approx(truth["lvesv_ml"], rel=0.05)
    assert 100 * (edv - esv) / edv == pytest.approx(truth["lvef"], abs=3.0)
    assert int(np.argmax(volumes)) == 0


def test_sax_stack_geometry_is_a_regular_base_to_apex_stack():
    site = get_sites(["lakeshore"], phases=4)[0]
    params, _ = heart_params([], np.random.default_rng(0))
    st = heart_state(params, 4)
    geo = make_geometry(np.random.default_rng(1))
    views = plan_views(params, st, geo, site)
    sax = views["SAX"]
    assert 8 <= len(sax) <= 14
    normal = sax[0].normal
    where = np.array([pl.position @ normal for pl in sax])
    steps = np.diff(where)
    np.testing.assert_allclose(steps, steps[0], atol=1e-6)
    np.testing.assert_allclose(abs(normal @ geo.axes[:, 2]), 1.0, atol=1e-9)  # perpendicular to the long axis
    for view in ("2CH", "3CH", "4CH"):
        (plane,) = views[view]
        assert abs(plane.normal @ geo.axes[:, 2]) < 1e-9  # long-axis planes contain the LV axis


def test_images_have_bssfp_contrast():
    site = get_sites(["northfield"], phases=4)[0]
    params, _ = heart_params([], np.random.default_rng(2))
    st = heart_state(params, 4)
    geo = make_geometry(np.random.default_rng(3))
    plane = plan_views(params, st, geo, site)["4CH"][0]
    labels = render_labels(params, st, geo, plane)
    img = render_image(labels, plane, params, st, geo, site, np.random.default_rng(4)).astype(float)
    assert img.dtype == float and img.max() <= site.max_value

    def mean(t: Tissue) -> float:
        return float(img[labels == t].mean())

    assert mean(Tissue.LV_BLOOD) > 2.5 * mean(Tissue.LV_MYO)
    assert mean(Tissue.FAT) > 2 * mean(Tissue.LV_MYO)
    assert mean(Tissue.LUNG) < 0.5 * mean(Tissue.LV_MYO)
    present = set(np.unique(labels).tolist())
    assert {Tissue.LV_BLOOD, Tissue.RV_BLOOD, Tissue.LA_BLOOD, Tissue.RA_BLOOD} <= present
