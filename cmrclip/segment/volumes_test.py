from __future__ import annotations

import numpy as np
import pytest

from cmrclip.segment.volumes import disc_thickness_mm, find_ed_es, volumes_from_masks


def _stack(n_slices: int = 3, lv_ed: int = 10, lv_es: int = 5, myo: int = 20, rv_ed: int = 8, rv_es: int = 4):
    """[S, 2, 12, 12] masks with exact pixel counts per slice: frame 0 = ED, frame 1 = ES."""
    masks = np.zeros((n_slices, 2, 12, 12), dtype=np.uint8)
    flat = masks.reshape(n_slices, 2, -1)
    for f, (lv, rv) in enumerate(((lv_ed, rv_ed), (lv_es, rv_es))):
        flat[:, f, :lv] = 1
        flat[:, f, 50 : 50 + myo] = 2
        flat[:, f, 100 : 100 + rv] = 3
    return masks


def test_disc_summation_by_hand():
    # 3 slices, 10 px LV at ED and 5 at ES, 2 x 2 mm pixels, 10 mm apart: EDV = 30 px * 4 mm2 * 10 mm = 1.2 mL
    v = volumes_from_masks(_stack(), (2.0, 2.0), slice_positions_mm=np.array([0.0, 10.0, 20.0]))
    assert v.ed_frame == 0 and v.es_frame == 1
    assert v.edv_ml == pytest.approx(1.2) and v.esv_ml == pytest.approx(0.6) and v.sv_ml == pytest.approx(0.6)
    assert v.lvef == pytest.approx(50.0)
    assert v.lv_mass_g == pytest.approx(60 * 4 * 10 / 1000 * 1.05)
    assert v.rvedv_ml == pytest.approx(0.96) and v.rvesv_ml == pytest.approx(0.48) and v.rvef == pytest.approx(50.0)
    assert v.lv_volume_curve_ml == pytest.approx([1.2, 0.6])
    assert v.warnings == []


def test_slice_spacing_scalar_matches_positions():
    by_pos = volumes_from_masks(_stack(), (2.0, 2.0), slice_positions_mm=np.array([0.0, 8.0, 16.0]))
    by_spacing = volumes_from_masks(_stack(), (2.0, 2.0), slice_spacing_mm=8.0)
    assert by_pos.edv_ml == pytest.approx(by_spacing.edv_ml) == pytest.approx(30 * 4 * 8 / 1000)


def test_gap_is_split_between_neighbours_and_warned():
    # positions 0, 10, 30 mm: discs 10, 15, 20 mm thick (half gaps each side, end slices a full neighbour gap)
    warnings: list[str] = []
    thick = disc_thickness_mm(np.array([0.0, 10.0, 30.0]), warnings)
    assert thick == pytest.approx([10.0, 15.0, 20.0])
    assert any("gap" in w for w in warnings)
    v = volumes_from_masks(_stack(), (1.0, 1.0), slice_positions_mm=np.array([0.0, 10.0, 30.0]))
    assert v.edv_ml == pytest.approx(10 * (10 + 15 + 20) / 1000)
    assert any("gap" in w for w in v.warnings)


def test_overlapping_slices_counted_once_and_order_does_not_matter():
    # 10 mm thick slices 5 mm apart overlap; each disc is 5 mm (the spacing), not the 10 mm thickness
    pos3d = np.array([[0, 0, 10.0], [0, 0, 0.0], [0, 0, 5.0]])  # unsorted, 3D positions
    assert disc_thickness_mm(pos3d) == pytest.approx([5.0, 5.0, 5.0])
    v = volumes_from_masks(_stack(), (1.0, 1.0), slice_positions_mm=pos3d)
    assert v.edv_ml == pytest.approx(30 * 5 / 1000)


def test_duplicate_positions_warned():
    warnings: list[str] = []
    disc_thickness_mm(np.array([0.0, 0.0, 10.0, 20.0]), warnings)
    assert any("share one position" in w for w in warnings)


def test_ed_es_from_a_synthetic_volume_curve():
    frames = 25
    t = np.arange(frames)
    curve = 120 - 35 * (1 - np.cos(2 * np.pi * (t - 3) / frames)) / 2 + np.random.default_rng(0).normal(0, 0.5, frames)
    ed, es = find_ed_es(curve)
    assert ed in (2, 3, 4) and es in (15, 16, 17)
    v = volumes_from_masks(np.zeros((3, 2, 4, 4), np.uint8), (1.0, 1.0), slice_spacing_mm=10.0)
    assert v.lvef is None and any("no LV cavity" in w for w in v.warnings)


def test_ed_es_only_pair_in_either_order():
    masks = _stack()[:, ::-1]  # ES first
    v = volumes_from_masks(masks, (2.0, 2.0), slice_spacing_mm=10.0)
    assert (v.ed_frame, v.es_frame) == (1, 0) and v.lvef == pytest.approx(50.0)


def test_missing_pixel_spacing_gives_ef_but_no_millilitres():
    v = volumes_from_masks(_stack(), None, slice_spacing_mm=10.0)
    assert v.lvef == pytest.approx(50.0)
    assert v.edv_ml is None and v.lv_mass_g is None and v.lv_volume_curve_ml is None
    assert any("no in-plane pixel spacing" in w for w in v.warnings)


def test_missing_slice_geometry_gives_ef_but_no_millilitres():
    v = volumes_from_masks(_stack(), (1.0, 1.0))
    assert v.lvef == pytest.approx(50.0) and v.edv_ml is None
    assert any("no slice positions or spacing" in w for w in v.warnings)


def test_single_slice_or_frame_gives_no_volume():
    v = volumes_from_masks(_stack(n_slices=1), (1.0, 1.0), slice_spacing_mm=10.0)
    assert v.edv_ml is None and v.lvef is None and "single SAX slice" in v.warnings[0]
    v = volumes_from_masks(_stack()[:, :1], (1.0, 1.0), slice_spacing_mm=10.0)
    assert v.lvef is None and any("one frame" in w for w in v.warnings)
    v = volumes_from_masks(np.zeros((4, 4)), (1.0, 1.0))
    assert v.lvef is None and "shape" in v.warnings[0]


def test_to_dict_rounds_and_is_json_ready():
    import json

    d = volumes_from_masks(_stack(), (2.0, 2.0), slice_spacing_mm=10.0).to_dict()
    assert d["lvef"] == 50.0 and d["edv_ml"] == 1.2
    json.dumps(d)
