from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cmrclip.conditions import condition_keys
from cmrclip.errors import ConfigError
from cmrclip.ingest.store import StudyRecord, StudyStore, ViewData
from cmrclip.models.bundle import load_bundle
from cmrclip.models.convert import save_video_encoder
from cmrclip.models.registry import build_video_encoder
from cmrclip.train.finetune import FinetuneConfig, run_finetune

HCM = "Hypertrophic.Cardiomyopathy"


def _view(rng, n_slices, ef, thick, size=32, frames=8):
    yy, xx = np.mgrid[:size, :size] - size / 2
    r = np.hypot(yy, xx)
    px = np.zeros((n_slices, frames, size, size), np.uint8)
    for s in range(n_slices):
        for f in range(frames):
            radius = 12 * (1 - ef / 100 * (1 - math.cos(2 * math.pi * f / frames)) / 2)
            img = 200.0 * (r < radius) + 120.0 * ((r >= radius) & (r < radius + thick))
            px[s, f] = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    return ViewData(
        pixels=px,
        trigger_times_ms=np.tile(np.arange(frames) * 40.0, (n_slices, 1)),
        positions_mm=np.c_[np.zeros(n_slices), np.zeros(n_slices), np.arange(n_slices) * 8.0],
        pixel_spacing_mm=(1.5, 1.5),
        slice_thickness_mm=8.0,
        orientation=(1, 0, 0, 0, 1, 0),
        window=(0.0, 255.0),
        view_source="given",
    )


def make_toy_store(root, n_patients=24, seed=0, report=False):
    """A tiny store whose LVEF changes the cavity's motion and HCM thickens the wall (a few labels missing)."""
    rng = np.random.default_rng(seed)
    store = StudyStore.create(root)
    rows = []
    for p in range(n_patients):
        ef = float(rng.uniform(20, 75))
        hcm = float(p % 3 == 0)
        key = f"study{p:03d}"
        views = {"SAX": _view(rng, 6, ef, 5 if hcm else 2), "4CH": _view(rng, 1, ef, 5 if hcm else 2)}
        text = f"LVEF is estimated at {ef:.0f}%. " + (
            "Hypertrophic cardiomyopathy." if hcm else "Normal wall thickness."
        )
        store.write_study(StudyRecord(key, f"pat{p:03d}", "toy", views), report=text if report else None)
        row = {"study_key": key, "lvef": ef, **dict.fromkeys(condition_keys(), 0.0), HCM: hcm}
        rows.append(row)
    labels = pd.DataFrame(rows)
    labels.loc[1, HCM] = np.nan  # unknown label
    labels.loc[2, "lvef"] = np.nan  # unknown LVEF
    store.add_labels(labels)
    return store


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    store = make_toy_store(root / "store")
    enc = build_video_encoder("tiny", seed=1, overrides={"input_size": [16, 32, 32], "embed_dim": 32, "proj_dim": 64})
    save_video_encoder(enc, root / "encoder.pt")
    return store, root / "encoder.pt"


def _cfg(tmp_path, store, encoder, **kw):
    base = {
        "store_root": str(store.root),
        "out_dir": str(tmp_path / "run"),
        "encoder_path": str(encoder),
        "targets": [HCM],
        "epochs": 3,
        "batch_size": 4,
        "head": {"hidden": 16, "attention_dim": 8},
    }
    return FinetuneConfig.model_validate(base | kw)


def test_finetune_writes_bundle_predictions_and_metrics(tmp_path, toy):
    store, encoder = toy
    result = run_finetune(_cfg(tmp_path, store, encoder, mode="projection"))
    out = result.out_dir
    for name in ("model.pt", "predictions_val.csv", "predictions_test.csv", "metrics.jsonl", "config.resolved.yaml"):
        assert (out / name).is_file(), name
    val = pd.read_csv(out / "predictions_val.csv")
    assert list(val.columns) == [
        "study_key",
        "patient_key",
        "lvef_pred",
        "lvef",
        f"{HCM}_score",
        HCM,
        "normal_score",
        "normal",
    ]
    test = pd.read_csv(out / "predictions_test.csv")
    assert not set(val["patient_key"]) & set(test["patient_key"])
    assert val[f"{HCM}_score"].between(0, 1).all()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines[:-1]] == [0, 1, 2]
    bundle = load_bundle(out / "model.pt")
    assert bundle.targets == [HCM, "normal"]
    assert len(bundle.calibration["study_key"]) == len(val)
    assert bundle.calibration["embeddings"].shape == (len(val), 64)
    assert 0 <= bundle.thresholds[HCM] <= 1


@pytest.mark.slow
def test_transfer_mode_trains_the_encoder_on_clips(tmp_path, toy):
    store, encoder = toy
    result = run_finetune(
        _cfg(
            tmp_path,
            store,
            encoder,
            mode="finetune",
            epochs=1,
            cache_features=False,
            augment={},
            bags={"views": ["4CH", "SAX"], "sax_every": 3},
        )
    )
    assert math.isfinite(result.metrics["val_lvef_mae"])


def test_mode_and_encoder_mismatch_raise(tmp_path, toy):
    store, encoder = toy
    with pytest.raises(ConfigError, match="scratch"):
        run_finetune(_cfg(tmp_path, store, encoder, mode="scratch"))
    with pytest.raises(ConfigError, match="needs encoder_path"):
        run_finetune(_cfg(tmp_path, store, encoder, mode="linear", encoder_path=None))


def test_unknown_label_and_missing_view_are_reported(tmp_path, toy):
    store, encoder = toy
    from cmrclip.errors import LabelError

    with pytest.raises(LabelError, match="unknown label name"):
        run_finetune(_cfg(tmp_path, store, encoder, targets=["Not.A.Condition"]))
    result = run_finetune(
        _cfg(tmp_path, store, encoder, mode="linear", epochs=1, bags={"views": ["2CH", "4CH"], "required_views": []})
    )
    assert result.faults == []
    from cmrclip.errors import DataError

    with pytest.raises(DataError, match="no usable training study"):
        run_finetune(_cfg(tmp_path, store, encoder, bags={"required_views": ["3CH"]}))
    faults = [json.loads(x) for x in (tmp_path / "run" / "faults.jsonl").read_text().splitlines()]
    assert faults and all("3CH" in f["reason"] for f in faults)


def test_shared_feature_cache_gives_the_same_model(tmp_path, toy):
    store, encoder = toy
    cache: dict = {}
    runs = []
    for i, shared in enumerate((None, cache, cache)):
        cfg = _cfg(tmp_path, store, encoder, mode="linear", epochs=1, out_dir=str(tmp_path / f"r{i}"))
        run_finetune(cfg, feature_cache=shared)
        runs.append(pd.read_csv(tmp_path / f"r{i}" / "predictions_test.csv"))
    assert len(cache) >= len(runs[0])  # every test study (and train/val) was encoded once
    pd.testing.assert_frame_equal(runs[0], runs[1])
    pd.testing.assert_frame_equal(runs[0], runs[2])


# --- learning: fine-tuning must beat the mean predictor and a shuffled-label control; a mutation must break it ---


def _shuffle_targets_within_batch(monkeypatch):
    """Mutation: every batch's targets are permuted among its studies before the loss (learning is broken)."""
    import torch

    from cmrclip.train import finetune

    original = finetune.study_loss

    def mutated(out, batch, *args, **kwargs):
        perm = torch.randperm(len(batch["study_key"]), generator=torch.Generator().manual_seed(len(batch["clip_mask"])))
        keys = ("targets", "target_mask", "regression", "regression_mask")
        return original(out, batch | {k: batch[k][perm] for k in keys}, *args, **kwargs)

    monkeypatch.setattr(finetune, "study_loss", mutated)


def _learning_run(root, store, name, cache):
    cfg = FinetuneConfig(
        store_root=str(store.root), out_dir=str(root / name), encoder_path=str(root / "encoder.pt"), targets=[HCM],
        include_normal=False, epochs=60, batch_size=8, head={"hidden": 32, "attention_dim": 16}, mode="projection",
        test_share=0.3, bags={"views": ["4CH", "SAX"], "sax_every": 2}, optim={"lr": 3e-3, "warmup_steps": 5},
    )  # fmt: skip
    run_finetune(cfg, feature_cache=cache)
    return pd.read_csv(root / name / "predictions_test.csv")


def _errors(pred, manifest):
    """LVEF MAE and HCM Brier score of a run, and of the training split's mean (the mean predictor)."""
    train = manifest[manifest["split"] == "train"]
    lvef, hcm = pred.dropna(subset=["lvef"]), pred.dropna(subset=[HCM])
    return {
        "lvef": (lvef["lvef_pred"] - lvef["lvef"]).abs().mean(),
        "lvef_mean": (train["lvef"].mean() - lvef["lvef"]).abs().mean(),
        "hcm": ((hcm[f"{HCM}_score"] - hcm[HCM]) ** 2).mean(),
        "hcm_mean": ((train[HCM].mean() - hcm[HCM]) ** 2).mean(),
    }


def learned(pred, control, manifest) -> dict[str, bool]:
    """The learning criterion, per target: error under 70 % of the mean predictor's and of the shuffled control's."""
    e, c = _errors(pred, manifest), _errors(control, manifest)
    return {t: bool(e[t] < 0.7 * e[f"{t}_mean"] and e[t] < 0.7 * c[t]) for t in ("lvef", "hcm")}


@pytest.fixture(scope="module")
def learning(tmp_path_factory):
    """A 40-patient toy store, a frozen random encoder, and the shuffled-label control run (labels permuted)."""
    import shutil

    from cmrclip.data.store_split import write_split

    root = tmp_path_factory.mktemp("learning")
    store = make_toy_store(root / "store", n_patients=40)
    manifest = write_split(store, val=0.15, test=0.3)
    enc = build_video_encoder("tiny", seed=1, overrides={"input_size": [16, 32, 32], "embed_dim": 32, "proj_dim": 64})
    save_video_encoder(enc, root / "encoder.pt")
    control = StudyStore(shutil.copytree(store.root, root / "control"))
    labels = manifest[["study_key", "lvef", HCM]].copy()
    rows = np.flatnonzero((manifest["split"] != "test").to_numpy())  # test labels stay true: they score the control
    labels.loc[rows, ["lvef", HCM]] = labels.loc[np.random.default_rng(0).permutation(rows), ["lvef", HCM]].to_numpy()
    control.add_labels(labels)
    cache: dict = {}  # the same frozen encoder and pixels: features computed once for all runs
    return root, store, manifest, _learning_run(root, control, "control", cache), cache


@pytest.mark.slow
@pytest.mark.parametrize("mutation", [None, _shuffle_targets_within_batch])
def test_finetuning_learns_lvef_and_an_easy_condition(learning, mutation, monkeypatch):
    """Beats the mean predictor and the shuffled-label control on LVEF and HCM; shuffled batch targets do not."""
    root, store, manifest, control, cache = learning
    if mutation is not None:
        mutation(monkeypatch)
    pred = _learning_run(root, store, "mutated" if mutation else "run", cache)
    expected = mutation is None
    assert learned(pred, control, manifest) == {"lvef": expected, "hcm": expected}, _errors(pred, manifest)


@pytest.mark.parametrize("normalization", ["unit", "legacy"])
def test_the_bundles_recipe_round_trips_through_predict(tmp_path, toy, normalization):
    """`predict` rebuilds fine-tuning's inputs from the bundle alone: same clips, same outputs (<= 1e-5)."""
    import torch

    from cmrclip.serve.predict import load_model

    store, _ = toy
    over = {"input_size": [16, 32, 32], "embed_dim": 32, "proj_dim": 64, "normalization": normalization}
    save_video_encoder(build_video_encoder("tiny", seed=2, overrides=over), tmp_path / "encoder.pt")
    bags = {"views": ["SAX"], "sax_every": 3, "sax_drop_extremes": False}  # not the default bag
    result = run_finetune(_cfg(tmp_path, store, tmp_path / "encoder.pt", mode="linear", epochs=1, bags=bags))
    expected = pd.read_csv(result.out_dir / "predictions_test.csv")
    model = load_model(result.bundle)
    assert model.parts.recipe.normalization == normalization and model.parts.recipe.bags.views == ("SAX",)
    for row in expected.to_dict(orient="records"):
        study = model.load_study(f"{store.root}#{row['study_key']}")
        assert {r.view for r in study.refs} == {"SAX"} and len(study.refs) == 2  # slices 0 and 3 of 6
        pred = model.predict(study)
        with torch.no_grad():
            out = model.network(torch.ones(1, len(study.refs), dtype=torch.bool), clips=study.clips[None])
        assert abs(pred.lvef.value - row["lvef_pred"]) <= 1e-5
        assert abs(float(torch.sigmoid(out.logits[0, 0])) - row[f"{HCM}_score"]) <= 1e-5
