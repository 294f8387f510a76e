from __future__ import annotations

import math

import pytest
import torch

from cmrclip.errors import CheckpointError
from cmrclip.models.bundle import load_bundle, save_bundle
from cmrclip.models.heads import HeadConfig, StudyModel
from cmrclip.models.registry import build_video_encoder


def _model():
    enc = build_video_encoder("tiny", seed=3)
    head = HeadConfig(hidden=16, attention_dim=8)
    model = StudyModel(enc, enc.video_proj, enc.out_dim, head, targets=["Amyloid", "normal"], regression=["lvef"])
    model.set_regression_stats([52.0], [8.0])
    with torch.no_grad():
        enc.video_proj.weight.mul_(1.5)  # a "fine-tuned" projection must survive the round trip
    return model.eval()


def test_bundle_round_trip_keeps_predictions_and_calibration(tmp_path):
    model = _model()
    clips = torch.randn(2, 3, 3, 16, 64, 64)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    with torch.no_grad():
        before = model(mask, clips=clips)
    calibration = {
        "study_key": ["a", "b"],
        "lvef_pred": [50.0, 60.0],
        "lvef_true": [48.0, math.nan],
        "scores": [[0.1, 0.9], [0.7, 0.2]],
        "labels": [[0.0, 1.0], [math.nan, 0.0]],
    }
    path = save_bundle(tmp_path / "model.pt", model, calibration, {"Amyloid": 0.3}, {"val_lvef_mae": 4.2})
    bundle = load_bundle(path)
    with torch.no_grad():
        after = bundle.model(mask, clips=clips)
    assert torch.allclose(before.regression, after.regression, atol=1e-5)
    assert torch.allclose(before.logits, after.logits, atol=1e-5)
    assert bundle.targets == ["Amyloid", "normal"] and bundle.regression == ["lvef"]
    assert bundle.thresholds == {"Amyloid": 0.3} and bundle.metrics["val_lvef_mae"] == 4.2
    assert bundle.calibration["scores"].shape == (2, 2)
    assert torch.isnan(bundle.calibration["labels"][1, 0])
    assert bundle.calibration["study_key"] == ["a", "b"]
    assert bundle.normalization == "unit" and bundle.input_size == (16, 64, 64)


def test_load_bundle_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no study model bundle"):
        load_bundle(tmp_path / "nope.pt")
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a study model bundle"):
        load_bundle(tmp_path / "x.pt")
    path = save_bundle(tmp_path / "m.pt", _model(), {})
    body = torch.load(path, weights_only=True)
    body["encoder"]["state_dict"].pop(next(iter(body["encoder"]["state_dict"])))
    torch.save(body, path)
    with pytest.raises(CheckpointError, match="missing"):
        load_bundle(path)
