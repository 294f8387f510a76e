import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.segment import Segmenter, SegModelConfig, build_unet, save_segmenter, volumes_from_masks
from cmrclip.segment.infer import SaxStack, SegmentationResult
from cmrclip.segment.outputs import overlay_gif
from cmrclip.serve.predict import Model, load_model
from cmrclip.serve.volumes import LVEF_MARGIN_POINTS, lvef_disagreement, slice_overlays, volumes_block

SMALL = SegModelConfig(channels=(4, 8), strides=(2,), num_res_units=0, roi_px=64, tta_flips=False)


def _entry(store, key="a1b2c3d4e5f60718"):
    return f"{store.root}#{key}"


def _disk_result(radii_px: list[float], n_slices: int = 3, size: int = 40) -> SegmentationResult:
    """LV cavity disks of the given radius per frame on every slice (1 mm pixels, 10 mm slices)."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    frame_masks = np.stack([(r < radius).astype(np.uint8) for radius in radii_px])
    masks = np.repeat(frame_masks[None], n_slices, axis=0)
    positions = np.stack([np.zeros(n_slices), np.zeros(n_slices), 10.0 * np.arange(n_slices)], axis=1)
    stack = SaxStack(masks.astype(np.float32) * 100, (1.0, 1.0), positions)
    return SegmentationResult(masks, volumes_from_masks(masks, (1.0, 1.0), positions), stack)


def test_lvef_disagreement_margin():
    assert lvef_disagreement(60.0, 55.0) is None
    assert lvef_disagreement(60.0, 60.0 - LVEF_MARGIN_POINTS) is None  # at the margin: no warning
    warning = lvef_disagreement(77.0, 26.0)
    assert warning.startswith("lvef_disagreement:") and "51.0 points apart" in warning
    assert lvef_disagreement(30.0, 36.0, margin=5.0) is not None


def test_volumes_block_fields_and_forced_disagreement():
    result = _disk_result([10.0, 9.0, 7.0, 8.0])
    volumetric = 100 * (1 - 7.0**2 / 10.0**2)  # disk areas; every slice alike
    assert result.volumes.lvef == pytest.approx(volumetric, abs=3.0)
    block, warnings = volumes_block(result, regression_lvef=result.volumes.lvef + 25.0)
    expected = {"lvef", "edv_ml", "esv_ml", "sv_ml", "lv_mass_g", "rvef", "ed_frame", "es_frame", "warnings"}
    assert expected <= block.keys() and "lv_volume_curve_ml" in block
    assert (block["ed_frame"], block["es_frame"]) == (0, 2)
    assert block["lvef_disagreement"] is True and block["lvef_difference"] == pytest.approx(25.0, abs=0.1)
    assert block["lvef_margin"] == LVEF_MARGIN_POINTS
    assert any(w.startswith("lvef_disagreement:") for w in warnings)
    assert any("no RV cavity" in w for w in warnings)  # the volumes' own warnings come along
    block, warnings = volumes_block(result, regression_lvef=result.volumes.lvef - 4.0)
    assert block["lvef_disagreement"] is False and not any("lvef_disagreement" in w for w in warnings)
    block, _ = volumes_block(result, regression_lvef=None)
    assert block["lvef_difference"] is None and block["lvef_disagreement"] is False
    json.dumps(block)


def test_overlay_gif_colours_the_labels():
    frames = np.full((3, 200, 100), 100, dtype=np.uint8)
    frames[:, :, 50:] = 200  # two grey levels: the display stretch maps them to black and white
    masks = np.zeros((3, 200, 100), dtype=np.uint8)
    for f in range(3):
        masks[f, 80 : 120 + 10 * f, 30:70] = 1  # the cavity grows: three distinct frames
    image = Image.open(io.BytesIO(overlay_gif(frames, masks, max_px=128)))
    assert image.n_frames == 3 and image.size == (64, 128)
    rgb = np.asarray(image.convert("RGB"))
    assert int(rgb[64, 32, 0]) > int(rgb[64, 32, 1]) + 50  # LV cavity drawn red (rows 80-120 at scale 0.64)
    assert tuple(rgb[5, 5]) == (0, 0, 0) and tuple(rgb[5, 60]) == (255, 255, 255)  # unlabelled pixels stay grey
    overlays = slice_overlays(_disk_result([10.0, 8.0]))
    assert [o["slice_index"] for o in overlays] == [0, 1, 2]
    gif = base64.b64decode(overlays[0]["overlay_gif"].removeprefix("data:image/gif;base64,"))
    assert Image.open(io.BytesIO(gif)).n_frames == 2


@pytest.mark.slow
def test_predict_with_a_tiny_random_segmenter(plain_bundle, phantom_store, tmp_path):
    torch.manual_seed(0)
    seg_path = save_segmenter(Segmenter(build_unet(SMALL), SMALL), tmp_path / "seg.pt")
    model = load_model(plain_bundle, segmenter=seg_path)
    study = model.load_study(_entry(phantom_store))
    assert study.segmentation.masks.shape == (7, 20, 72, 72) and study.segmentation.masks.dtype == np.uint8
    pred = model.predict(study)
    body = json.loads(json.dumps(pred.to_dict()))
    vol = body["volumes"]
    assert {"lvef", "edv_ml", "esv_ml", "lvef_regression", "lvef_disagreement", "lvef_margin"} <= vol.keys()
    assert vol["lvef_regression"] == pytest.approx(pred.lvef.value, abs=0.05)
    flagged = any(w.startswith("lvef_disagreement:") for w in pred.warnings)
    assert flagged == vol["lvef_disagreement"]
    if vol["lvef"] is not None:
        assert vol["lvef_disagreement"] == (abs(pred.lvef.value - pred.volumes["lvef"]) > LVEF_MARGIN_POINTS + 0.05)
    assert load_model(plain_bundle).predict(study).to_dict()["volumes"] is not None  # the study holds its masks
    out = tmp_path / "pred.jsonl"
    args = ["predict", _entry(phantom_store), "--model", str(plain_bundle), "--seg-model", str(seg_path)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = json.loads(out.read_text())
    assert line["volumes"] == body["volumes"]
    result = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "none.pt"), "--out", str(out)])
    assert result.exit_code == 2 and "segmentation model" in result.output


def test_forced_disagreement_on_the_phantom(plain_bundle, phantom_store, threshold_segmenter):
    segmenter = threshold_segmenter
    strict = load_model(plain_bundle, segmenter=segmenter, lvef_margin=0.0)
    study = strict.load_study(_entry(phantom_store))  # segmented once; both models below use its masks
    pred = strict.predict(study)
    # the phantom's blood pool contracts from radius 0.22 to 0.16 of the image: LVEF about 45-50 %
    assert 35 < pred.volumes["lvef"] < 60 and pred.volumes["edv_ml"] > pred.volumes["esv_ml"] > 0
    assert pred.volumes["lvef_disagreement"] is True
    assert [w for w in pred.warnings if w.startswith("lvef_disagreement:")]
    lenient = Model(strict.parts, segmenter=segmenter, lvef_margin=1000.0).predict(study)
    assert lenient.volumes["lvef_disagreement"] is False
    assert not [w for w in lenient.warnings if "lvef_disagreement" in w]
    assert lenient.volumes["lvef"] == pred.volumes["lvef"]


def test_study_without_sax_gets_a_warning_not_volumes(plain_bundle, threshold_segmenter, make_phantom_view, tmp_path):
    from cmrclip.ingest.store import StudyRecord, StudyStore

    store = StudyStore.create(tmp_path / "store")
    store.write_study(StudyRecord("e5f6071829304a5b", "r" * 16, "siteA", {"4CH": make_phantom_view(1, seed=4)}))
    pred = load_model(plain_bundle, segmenter=threshold_segmenter).predict(_entry(store, "e5f6071829304a5b"))
    assert pred.volumes is None and pred.lvef is not None
    assert any(w.startswith("no volumes:") and "no SAX view" in w for w in pred.warnings)
