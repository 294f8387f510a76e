from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from cmrclip.conftest import _toy_study
from cmrclip.errors import DataError
from cmrclip.ingest.store import StudyStore
from cmrclip.segment import SaxStack, Segmenter, build_unet, sax_stack, segment_study
from cmrclip.segment.model import SegModelConfig
from cmrclip.segment.outputs import mask_affine, write_outputs

TINY = SegModelConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=1, roi_px=32)


@pytest.fixture(scope="module")
def tiny() -> Segmenter:
    return Segmenter(build_unet(TINY), TINY)


def _pixels(n_slices: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n_slices, 4, 40, 40), dtype=np.uint8)


@pytest.mark.slow
def test_segment_real_sunnybrook_study_shape_and_geometry(shared_data, tiny, tmp_path):
    from cmrclip.serve.inputs import open_source

    with open_source(shared_data / "sunnybrook" / "dicom_tar_xz" / "SCD0000101.tar.xz") as study:
        assert study.views["SAX"].n_slices == 12 and study.views["SAX"].n_frames == 20
        stack = sax_stack(study)
    stack.pixels = stack.pixels[:, :4]  # 4 of the 20 frames keep the test fast; the geometry is the study's
    stored, positions = stack.pixels, stack.positions_mm
    result = segment_study(tiny, stack)
    assert result.masks.shape == stored.shape and result.masks.dtype == np.uint8
    assert set(np.unique(result.masks)) <= {0, 1, 2, 3}
    paths = write_outputs(result, tmp_path)
    image = nib.load(paths["masks"])
    s, f, h, w = stored.shape
    assert image.shape == (w, h, s, f)
    assert np.array_equal(np.asarray(image.dataobj)[..., 0].transpose(2, 1, 0), result.masks[:, 0])
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine  # NIfTI is RAS, DICOM positions are LPS
    for k in range(s):
        assert lps[:3] @ np.array([0, 0, k, 1.0]) == pytest.approx(positions[k], abs=1e-3)
    assert np.linalg.norm(lps[:3, 0]) == pytest.approx(result.stack.pixel_spacing_mm[1], abs=1e-4)
    assert len(list(tmp_path.glob("overlay_slice_*.gif"))) == s == 12
    body = json.loads(paths["volumes"].read_text())
    assert body["labels"] == {"background": 0, "lv_cavity": 1, "lv_myocardium": 2, "rv_cavity": 3}


def test_study_without_sax_is_a_clear_error(tiny, tmp_path):
    record, _ = _toy_study("k1", "p1", 1, np.random.default_rng(0))
    del record.views["SAX"]
    store = StudyStore.create(tmp_path / "store")
    store.write_study(record)
    with store.open("k1") as study, pytest.raises(DataError, match="no SAX view"):
        segment_study(tiny, study)


def test_one_slice_gives_masks_but_no_volume(tiny):
    result = segment_study(tiny, SaxStack(_pixels(1), (1.5, 1.5), np.zeros((1, 3))))
    assert result.masks.shape == (1, 4, 40, 40)
    assert result.volumes.lvef is None and result.volumes.edv_ml is None
    assert any("single SAX slice" in w for w in result.volumes.warnings)


def test_missing_spacing_is_warned_and_never_made_up(tiny):
    result = segment_study(tiny, SaxStack(_pixels(3), None, None))
    assert any("no pixel spacing" in w for w in result.warnings)
    assert result.volumes.edv_ml is None and result.volumes.lv_volume_curve_ml is None
    with pytest.raises(DataError, match="slices, frames, H, W"):
        segment_study(tiny, SaxStack(np.zeros((4, 40, 40)), (1.5, 1.5)))


def test_mask_affine_without_positions_uses_spacing():
    affine = mask_affine(SaxStack(np.zeros((3, 2, 8, 8)), (2.0, 1.0), None, None, 10.0))
    assert np.abs(affine[:3, :3]).sum(axis=0) == pytest.approx([1.0, 2.0, 10.0])


def test_postprocess_drops_blobs_apart_from_the_heart_across_slices():
    from cmrclip.segment.infer import _postprocess

    labels = torch.zeros(3, 2, 20, 20, dtype=torch.uint8)
    labels[:2, :, 5:10, 5:10] = 1  # the LV cavity on slices 0-1, both frames
    labels[1, 1, 7:8, 7:8] = 0  # a hole, filled
    labels[2, 1, 14:18, 14:18] = 1  # a blob beyond the apex that touches nothing
    out = _postprocess(labels)
    assert out[2].sum() == 0
    assert (out[:2, :, 5:10, 5:10] == 1).all()
