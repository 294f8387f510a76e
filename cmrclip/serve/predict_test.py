import json
import math

import numpy as np
import pytest
import torch

from cmrclip.errors import CheckpointError, DataError
from cmrclip.models.ood import fit_ood_guard
from cmrclip.models.recipe import InputRecipe
from cmrclip.serve.bundle_io import ModelParts
from cmrclip.serve.predict import Model, StudyPrediction, load_model


@pytest.fixture
def model(tiny_model):
    return tiny_model


def _entry(store, key="a1b2c3d4e5f60718"):
    return f"{store.root}#{key}"


def test_predict_returns_a_full_result(model, phantom_store, tiny_bundle):
    pred = model.predict(_entry(phantom_store))
    assert isinstance(pred, StudyPrediction)
    assert pred.study_key == "a1b2c3d4e5f60718"
    assert pred.views == ["SAX", "4CH"]
    # 7 SAX slices: drop both ends, keep every second -> 3, plus the 4CH clip
    assert [(c["view"], c["slice_index"]) for c in pred.clips] == [("4CH", 0), ("SAX", 1), ("SAX", 3), ("SAX", 5)]
    assert math.isclose(sum(c["mil_weight"] for c in pred.clips), 1.0, rel_tol=1e-5)
    assert len(pred.conditions) == 39
    assert all(0 <= c.probability <= 1 and c.positive == (c.probability >= c.threshold) for c in pred.conditions)
    assert pred.warnings[0].startswith("missing views: 2CH, 3CH")
    # the interval is the split-conformal one, recomputed here from the bundle's calibration data
    cal = torch.load(tiny_bundle, weights_only=True)["calibration"]
    resid = np.sort(np.abs(cal["lvef_pred"].numpy() - cal["lvef_true"].numpy()))
    half = resid[math.ceil((len(resid) + 1) * 0.9) - 1]
    assert pred.lvef.upper - pred.lvef.value == pytest.approx(half, rel=1e-5)
    assert pred.lvef.coverage == pytest.approx(0.9)
    body = json.loads(json.dumps(pred.to_dict()))
    probs = [c["probability"] for c in body["conditions"]]
    assert probs == sorted(probs, reverse=True)
    row = pred.to_row()
    assert row["lvef_pred"] == pred.lvef.value
    assert "Amyloid_score" in row


def test_predict_is_deterministic_and_calibrated(model, phantom_store):
    a = model.predict(_entry(phantom_store))
    b = model.predict(_entry(phantom_store))
    assert a.to_dict() == b.to_dict()
    study = model.load_study(_entry(phantom_store))
    with torch.no_grad():
        out = model.network(clip_mask=torch.ones(1, len(study.refs), dtype=torch.bool), clips=study.clips[None])
    raw = torch.sigmoid(out.logits[0]).numpy()
    key = model.parts.targets[1]
    scaler = model.parts.calibrators[key]
    expected = 1 / (1 + np.exp(-(scaler.slope * np.log(raw[1] / (1 - raw[1])) + scaler.intercept)))
    got = next(c.probability for c in a.conditions if c.key == key)
    assert got == pytest.approx(expected, rel=1e-5)


def test_embed_is_unit_norm_and_study_specific(model, phantom_store):
    e1 = model.embed(_entry(phantom_store))
    e2 = model.embed(_entry(phantom_store, "c3d4e5f607182930"))
    assert e1.shape == (model.network.encoder.config.proj_dim,)
    assert np.linalg.norm(e1) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(e1, e2)


def test_ood_check_flags_far_studies():
    rng = np.random.default_rng(1)
    emb, stats = rng.normal(size=(60, 16)), rng.normal(size=(60, 9))
    guard = fit_ood_guard(emb[:40], stats[:40], emb[40:], stats[40:])
    parts = ModelParts(None, InputRecipe(), [], [], ood=guard)
    assert parts.ood_check(emb[45], stats[45])[1] is None
    score, warning = parts.ood_check(emb[45], stats[45] + 6.0)
    assert score > 1.5
    assert warning.startswith("out-of-distribution") and "input image statistics" in warning


def test_bundle_without_guard_still_predicts(tiny_model, phantom_store):
    assert tiny_model.parts.ood is None  # written without ood_* calibration, as bundles before the guard were
    prediction = tiny_model.predict(_entry(phantom_store))
    assert prediction.ood_distance is None and not any("out-of-distribution" in w for w in prediction.warnings)


def test_batch_streams_and_records_faults(model, phantom_store, tmp_path):
    sources = [_entry(phantom_store), tmp_path / "missing", _entry(phantom_store, "c3d4e5f607182930")]
    seen = []
    results = list(model.predict_many(sources, progress=lambda *a: seen.append(a), total=3))
    assert [type(r).__name__ for r in results] == ["StudyPrediction", "PredictionFault", "StudyPrediction"]
    assert "does not exist" in results[1].reason
    assert [r.to_dict()["input"] for r in results] == [str(s) for s in sources]  # each line names its input
    assert seen[-1] == ("predict", 3, 3)
    assert results[2].warnings[0].startswith("missing views: 2CH, 3CH, 4CH")


def test_errors_are_clear(tmp_path, model):
    with pytest.raises(CheckpointError, match="no study model bundle"):
        load_model(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    torch.save({"format": "something-else"}, junk)
    with pytest.raises(CheckpointError, match="not a study model bundle"):
        load_model(junk)
    with pytest.raises(DataError, match="does not exist"):
        model.predict(tmp_path / "missing-study")
    with pytest.raises(CheckpointError, match="clip_path"):
        model.zeroshot(tmp_path, ["normal"])
    assert isinstance(model, Model)


@pytest.mark.slow
def test_public_api_and_cli(plain_bundle, phantom_store, tmp_path):
    from typer.testing import CliRunner

    import cmrclip
    from cmrclip.cli import app

    assert cmrclip.load_model is load_model
    runner = CliRunner()
    out = tmp_path / "pred.jsonl"
    args = ["predict", _entry(phantom_store), str(tmp_path / "nope"), "--model", str(plain_bundle), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 studies predicted, 1 failed" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["study_key"] == "a1b2c3d4e5f60718" and len(lines[0]["conditions"]) == 39
    assert lines[0]["input"] == _entry(phantom_store)  # the input as given, beside the salted key
    assert lines[1] == {"input": str(tmp_path / "nope"), "error": lines[1]["error"]}
    assert "does not exist" in lines[1]["error"]
    result = runner.invoke(
        app, ["explain", _entry(phantom_store), "--model", str(plain_bundle), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "explain.json").read_text())["clips"]) == 4
    result = runner.invoke(app, ["explain", str(tmp_path / "nope"), "--model", str(plain_bundle), "--out", "x"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.slow
def test_predict_on_real_sunnybrook_dicom(model, shared_data):
    archive = shared_data / "sunnybrook" / "dicom_tar_xz" / "SCD0000101.tar.xz"
    results = list(model.predict_many([archive]))
    assert [type(r).__name__ for r in results] == ["StudyPrediction"], results
    for pred in results:
        assert pred.views == ["SAX"] and pred.input == str(archive)
        assert all(c["view"] == "SAX" for c in pred.clips)
        # 12-13 slices: both ends dropped, every second kept
        assert 5 <= pred.n_clips <= 6
        assert np.isfinite(pred.lvef.value) and pred.lvef.lower < pred.lvef.value < pred.lvef.upper
        assert len(pred.conditions) == 39
        assert pred.warnings[0].startswith("missing views: 2CH, 3CH, 4CH")
        assert pred.ood_distance is None  # a bundle without an OOD guard; the guard on real studies: ood_real_test.py
        json.dumps(pred.to_dict())


@pytest.mark.slow
def test_zeroshot_with_clip_towers(plain_bundle, phantom_store, tmp_path):
    import torch.nn.functional as F

    from cmrclip.models.bundle import encoder_payload
    from cmrclip.models.clip import ClipModel
    from cmrclip.models.prompts import CLIP_FORMAT
    from cmrclip.models.registry import build_video_encoder
    from cmrclip.models.text import TextConfig, TextEncoder, load_tokenizer, minilm_dir, tokenize

    video = build_video_encoder("tiny", seed=1, overrides={"input_size": [16, 32, 32], "embed_dim": 32, "proj_dim": 32})
    tcfg = TextConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, proj_dim=32,
                      tokenizer_dir=str(minilm_dir()), max_length=32)  # fmt: skip
    clip = ClipModel(video, TextEncoder(tcfg), embed_dim=32).eval()
    body = {"format": CLIP_FORMAT, "video": encoder_payload(video), "text_config": tcfg.model_dump(mode="json"),
            "embed_dim": 32, "state_dict": clip.state_dict()}  # fmt: skip
    torch.save(body, tmp_path / "clip.pt")
    model = load_model(plain_bundle, clip_path=tmp_path / "clip.pt")
    prompts = ["The left ventricle is dilated.", "Normal left ventricular size and function."]
    got = model.zeroshot(_entry(phantom_store), prompts)
    assert list(got) == prompts and sum(got.values()) == pytest.approx(1.0)
    # recomputed independently from the CLIP towers
    with torch.no_grad():
        from cmrclip.ingest.store import StudyStore
        from cmrclip.models.recipe import recipe_for
        from cmrclip.serve.inputs import load_study

        with StudyStore(phantom_store.root).open("a1b2c3d4e5f60718") as f:
            clips = load_study(f, recipe_for(clip.video)).clips
        v = F.normalize(F.normalize(clip.video.encode(clips), dim=-1).mean(0), dim=-1)
        tok = tokenize(load_tokenizer(tcfg), prompts, 32)
        t = clip.encode_text(tok["input_ids"], tok["attention_mask"])
        expected = (clip.scale() * t @ v).softmax(0)
    assert [got[p] for p in prompts] == pytest.approx(expected.tolist(), rel=1e-4)
    with pytest.raises(DataError, match="pass the study's path"):
        model.zeroshot(model.load_study(_entry(phantom_store)), prompts)
    with pytest.raises(DataError, match="at least one"):
        model.zeroshot(_entry(phantom_store), [])


def test_too_little_calibration_is_warned_in_every_prediction(model, phantom_store):
    from cmrclip.evaluate.conformal import ConformalInterval
    from cmrclip.serve.bundle_io import calibration_warnings

    cal = {"lvef_true": np.full(4, 50.0), "scores": np.full((4, 1), 0.5)}
    parts = ModelParts(None, InputRecipe(), ["Amyloid"], ["lvef"])
    warnings = calibration_warnings(cal, parts)
    assert "no LVEF interval" in warnings[0] and "4 studies with LVEF" in warnings[0]
    assert "1 of 1 condition probabilities are not calibrated" in warnings[1]
    parts.conformal, parts.calibrators = ConformalInterval(5.0, 0.1, 12), {"Amyloid": None}
    assert calibration_warnings(cal, parts) == [
        "the LVEF interval was fitted on only 12 validation studies (fewer than 30): its 90% coverage is not reliable",
        "condition probabilities were calibrated on only 4 validation studies",
    ]
    model.parts.calibration_warnings = warnings
    try:
        assert model.predict(_entry(phantom_store)).warnings[-2:] == warnings  # in the output, not only the log
    finally:
        model.parts.calibration_warnings = []
