from __future__ import annotations

import json

import pytest
import torch

from cmrclip.config import load_config
from cmrclip.data.store_split import split_patients
from cmrclip.errors import CheckpointError, ConfigError
from cmrclip.ingest.store import StudyStore
from cmrclip.models.convert import load_video_encoder
from cmrclip.models.prompts import load_clip_model
from cmrclip.models.text import minilm_dir
from cmrclip.train.pretrain import PretrainConfig, pretrain, split_held_out


def tiny_cfg(store, *extra: str) -> PretrainConfig:
    overrides = [
        f"store_root={store}",
        "seed=1",
        "train.batch_size=6",
        "train.steps=6",
        "train.checkpoint_every=2",
        "model.video_overrides={input_size: [8, 32, 32], depth: 2, stage_starts: [1], embed_dim: 32}",
        "data.n_frames=8",
        "data.num_workers=0",
        "model.text.source=config",
        "model.text.hidden_size=32",
        "model.text.num_layers=1",
        "model.text.intermediate_size=64",
        f"model.text.tokenizer_dir={minilm_dir()}",
        "model.embed_dim=32",
        "optim.warmup_steps=1",
        "optim.lr=0.003",
        *extra,
    ]
    return load_config(PretrainConfig, None, overrides, defaults="pretrain.yaml")


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_packaged_defaults_validate():
    cfg = load_config(PretrainConfig, defaults="pretrain.yaml")
    assert cfg.model.video == "tiny" and cfg.model.text.source == "minilm" and cfg.model.text.trainable_layers == 0
    assert cfg.train.batch_size == 64 and cfg.data.views == ["SAX"]
    assert cfg.model.video_overrides == {} and cfg.data.text_sampler.deterministic


@pytest.mark.slow
def test_pretrain_writes_outputs_and_loss_decreases(toy_store, tmp_path):
    out = tmp_path / "run"
    result = pretrain(tiny_cfg(toy_store, "train.steps=12", "train.checkpoint_every=6"), out)
    assert result.steps == 12
    for name in ("encoder.pt", "clip.pt", "config.resolved.yaml", "checkpoints/last.pt", "metrics.jsonl"):
        assert (out / name).is_file(), name
    recs = _records(out)
    assert [r["epoch"] for r in recs] == list(range(6))  # 16 training studies (8 patients) / 6 = 2 steps per epoch
    assert recs[-1]["loss"] < recs[0]["loss"]
    for key in ("temperature", "lr", "video_to_text_r@1", "text_to_video_r@5", "video_to_text_r@10"):
        assert key in recs[-1]
    assert recs[-1]["n_candidates"] == 4  # the val split's studies
    enc = torch.load(out / "encoder.pt", weights_only=False)
    assert enc["format"] == "cmrclip-video-encoder/1" and enc["embed_dim"] == 32
    model, _ = load_clip_model(out / "clip.pt")
    encoder = load_video_encoder(out / "encoder.pt")
    x = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model.encode_video(x), encoder(x), atol=1e-6)
    assert float(1 / model.scale().detach()) == pytest.approx(recs[-1]["temperature"], rel=1e-5)
    assert encoder.info.metrics["video_to_text_r@5"] == recs[-1]["video_to_text_r@5"]
    manifest = StudyStore(toy_store).manifest()
    assert encoder.info.train_patients == split_patients(manifest, "train")  # recorded for the leakage check
    assert model.video.info.train_patients == encoder.info.train_patients
    assert encoder.info.recipe["bags"]["views"] == ["SAX"] and encoder.info.recipe["frames"] == 8


@pytest.mark.slow
def test_interrupted_run_resumes_to_identical_weights(toy_store, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    pretrain(tiny_cfg(toy_store), full)
    partial = pretrain(tiny_cfg(toy_store), cut, stop_after=4)  # interrupted after the step-4 checkpoint
    assert partial.steps == 4 and not (cut / "encoder.pt").exists()
    with (cut / "metrics.jsonl").open("a") as fh:  # a record written after the checkpoint is recomputed
        fh.write(json.dumps({"step": 5, "stale": True}) + "\n")
    pretrain(tiny_cfg(toy_store), cut, resume=True)
    a = torch.load(full / "clip.pt", weights_only=False)["state_dict"]
    b = torch.load(cut / "clip.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    timing = {"seconds", "clips_per_s"}
    strip = [{k: v for k, v in r.items() if k not in timing} for r in _records(full)]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in _records(cut)]


def test_resume_without_checkpoint_and_bad_config(toy_store, tmp_path):
    with pytest.raises(CheckpointError, match="no training state"):
        pretrain(tiny_cfg(toy_store), tmp_path / "nothing", resume=True)
    with pytest.raises(ConfigError, match="store_root is not set"):
        pretrain(tiny_cfg("", "store_root=null"), tmp_path / "x")
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        pretrain(tiny_cfg(toy_store, "train.batch_size=64"), tmp_path / "y")


def test_held_out_is_the_stores_val_split_and_test_is_never_read(toy_store):
    from cmrclip.data.dataset import studies_with_reports
    from cmrclip.data.store_split import ensure_split
    from cmrclip.ingest.store import StudyStore

    studies = studies_with_reports(ensure_split(StudyStore(toy_store)))
    train, held = split_held_out(studies)
    assert set(train["split"]) == {"train"} and set(held["split"]) == {"val"}
    assert len(train) + len(held) + (studies["split"] == "test").sum() == 24 and len(held) > 0
    assert not set(train["patient_key"]) & set(held["patient_key"])


@pytest.mark.slow
def test_cli_pretrain_then_embed(toy_store, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from cmrclip.cli import app

    cfg = tiny_cfg(toy_store).model_dump(mode="json")
    cfg.pop("store_root")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(tmp_path / "tiny.yaml"), "--store", str(toy_store), "--out", str(out)]
    result = runner.invoke(app, [*args, "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "pretrain: 3 steps" in result.output and (out / "encoder.pt").is_file()
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["config"]["train"]["steps"] == 3
    result = runner.invoke(app, ["embed", str(out / "clip.pt"), "--store", str(toy_store), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "24 studies, 120 clips" in result.output and (tmp_path / "embeddings.npz").is_file()
    result = runner.invoke(app, ["pretrain", "--out", str(tmp_path / "none"), "--set", "train.steps=2"])
    assert result.exit_code == 2 and "store_root is not set" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("accum", [1, 2])
def test_torchrun_two_gloo_processes_match_one_process(toy_store, tmp_path, accum):
    """2 ranks x batch 3 (gathered negatives, averaged gradients) == 1 process x batch 6, step for step.

    With accumulation the ranks skip the gradient all-reduce on all but the last micro-batch (DDP ``no_sync``).
    """
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    cfg = tiny_cfg(
        toy_store, "train.steps=3", "train.checkpoint_every=3", "train.device=cpu", f"train.accum_steps={accum}"
    )
    single = tmp_path / "single"
    pretrain(cfg, single)
    data = cfg.model_dump(mode="json")
    data["train"]["batch_size"] = 3
    data["train"]["torch_threads"] = 1
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(data))
    script = shutil.which("cmrclip", path=str(Path(sys.executable).parent))
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port of its own: a fixed one can meet another run's store and hang
        "--nproc-per-node",
        "2",
    ]
    args = [script, "pretrain", "--config", str(tmp_path / "ddp.yaml"), "--out", str(tmp_path / "ddp")]
    env = os.environ | {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(torchrun + args, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(single / "clip.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "ddp" / "clip.pt", weights_only=True)["state_dict"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    assert _records(single)[-1]["loss"] == pytest.approx(_records(tmp_path / "ddp")[-1]["loss"], abs=1e-5)


@pytest.mark.slow
def test_pretrain_with_several_clips_per_study(toy_store, tmp_path):
    cfg = tiny_cfg(toy_store, "train.steps=2", "data.clips_per_study=2", "data.views=null")  # one epoch
    result = pretrain(cfg, tmp_path / "run")
    assert result.steps == 2
    record = _records(tmp_path / "run")[-1]
    assert record["n_candidates"] == 4 and 0.0 <= record["video_to_text_r@5"] <= 1.0
    assert record["clips_per_s"] > 0


def test_studies_without_an_allowed_view_are_skipped():
    import pandas as pd

    from cmrclip.train.pretrain import _with_allowed_views

    studies = pd.DataFrame({"study_key": ["a", "b", "c"], "views": [["SAX", "4CH"], ["2CH"], ["SAX"]]})
    assert _with_allowed_views(studies, ["SAX"])["study_key"].tolist() == ["a", "c"]
    assert _with_allowed_views(studies, None)["study_key"].tolist() == ["a", "b", "c"]


@pytest.mark.slow
def test_accumulation_steps_once_per_group_with_the_summed_gradient(toy_store, tmp_path, monkeypatch):
    """accum_steps=2: one optimizer step per two micro-batches, on the sum of their (halved) gradients."""
    import itertools

    from cmrclip.data.loader import make_loader
    from cmrclip.train import pretrain as module
    from cmrclip.train.distributed import init_distributed

    cfg = tiny_cfg(toy_store, "train.accum_steps=2", "train.batch_size=3", "train.steps=3")
    seen, original = [], module._optimizer_step

    def spy(run):
        seen.append({n: p.grad.clone() for n, p in run.clip.named_parameters() if p.grad is not None})
        original(run)

    monkeypatch.setattr(module, "_optimizer_step", spy)
    result = pretrain(cfg, tmp_path / "run")
    assert result.steps == 3 and len(seen) == 3
    assert [r["epoch"] for r in _records(tmp_path / "run")] == [0, 1]  # 16 studies / 3: 2 steps per epoch

    torch.manual_seed(cfg.seed * 1000)  # as pretrain() seeds before building
    run = module._build(cfg, tmp_path / "manual", init_distributed("cpu"))
    run.sampler.set_epoch(0)
    run.train_ds.set_epoch(0)
    first_two = itertools.islice(make_loader(run.train_ds, 3, run.sampler, 0), 2)
    expected: dict[str, torch.Tensor] = {}
    for batch in first_two:
        run.optimizer.zero_grad(set_to_none=True)
        module._micro_step(run, batch)
        for n, p in run.clip.named_parameters():
            if p.grad is not None:
                expected[n] = expected.get(n, 0) + p.grad
    assert set(expected) == set(seen[0])
    for name, grad in expected.items():
        torch.testing.assert_close(seen[0][name], grad, atol=1e-6, rtol=1e-4)


@pytest.mark.slow
def test_a_test_patient_in_pretraining_stops_finetune_and_zeroshot(toy_store, tmp_path):
    """A store whose split was changed after pretraining (a pretraining patient now in test) is refused, by name."""
    import shutil

    from cmrclip.errors import LeakageError
    from cmrclip.train.finetune import FinetuneConfig, run_finetune
    from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot

    store = StudyStore.create(shutil.copytree(toy_store, tmp_path / "store"))
    pretrain(tiny_cfg(store.root, "train.steps=2"), tmp_path / "pre")
    manifest = store.manifest()
    moved = split_patients(manifest, "train")[0]
    store.set_split(dict.fromkeys(manifest.loc[manifest["patient_key"] == moved, "study_key"], "test"))
    finetune = FinetuneConfig(
        store_root=str(store.root), out_dir=str(tmp_path / "ft"), encoder_path=str(tmp_path / "pre" / "encoder.pt")
    )
    with pytest.raises(LeakageError, match=f"1 test patient\\(s\\) .*encoder.pt: {moved}"):
        run_finetune(finetune)
    zeroshot = ZeroshotConfig(store_root=str(store.root), clip_path=str(tmp_path / "pre" / "clip.pt"))
    with pytest.raises(LeakageError, match=moved):
        run_zeroshot(zeroshot)


# --- learning: held-out recall must beat a shuffled-report control; shuffling texts within batches must break it ---


def _shuffle_texts_within_batch(monkeypatch):
    """Mutation: every pretraining batch pairs its clips with a permutation of its texts (learning is broken)."""
    import numpy as np

    from cmrclip.train import pretrain as module

    original = module._micro_step

    def mutated(run, batch, sync=True):
        perm = np.random.default_rng(run.state.step).permutation(len(batch["text"]))
        return original(run, batch | {"text": [batch["text"][i] for i in perm]}, sync)

    monkeypatch.setattr(module, "_micro_step", mutated)


def _recall_score(metrics) -> float:
    """Mean held-out recall@1 and @5, both directions."""
    keys = ("video_to_text_r@1", "text_to_video_r@1", "video_to_text_r@5", "text_to_video_r@5")
    return sum(metrics[k] for k in keys) / len(keys)


LVD = "Left.Ventricular.Dilation"
PROMPTS = {  # the toy reports' own wording: the condition the toy data makes easy
    "conditions": {
        LVD: {
            "positive": ["The left ventricle is dilated.", "The left ventricle is severely dilated."],
            "negative": ["The left ventricle is small.", "The left ventricle is normal."],
        }
    }
}


@pytest.fixture(scope="module")
def recall_store(tmp_path_factory):
    """48 one-study patients whose reports name a disc size the cine shows (4 sizes; sizes 2-3 are left-ventricular
    dilation), 12 held out for retrieval and 12 for testing; and the shuffled-report control's recall score."""
    import numpy as np
    import pandas as pd
    import yaml

    from cmrclip.config import packaged_yaml
    from cmrclip.conftest import _toy_study
    from cmrclip.data.store_split import write_split

    root = tmp_path_factory.mktemp("recall")
    store, rng = StudyStore.create(root / "store"), np.random.default_rng(0)
    for i in range(48):
        record, report = _toy_study(f"{i:016x}", f"p{i:015x}", i % 4, rng)
        store.write_study(record, report=report)
    store.add_labels(
        pd.DataFrame({"study_key": [f"{i:016x}" for i in range(48)], LVD: [float(i % 4 >= 2) for i in range(48)]})
    )
    write_split(store, val=0.25, test=0.25)
    (root / "prompts.yaml").write_text(yaml.safe_dump(packaged_yaml("prompts.yaml") | PROMPTS))
    control = pretrain(_recall_cfg(store.root, "data.shuffle_reports=true"), root / "control")
    return store.root, _recall_score(control.metrics), root / "prompts.yaml"


def _recall_cfg(store, *extra):
    return tiny_cfg(store, "train.steps=30", "train.checkpoint_every=1000", *extra)


def _zero_shot_auroc(store, clip_path, prompts, out):
    """Test-split AUROC of zero-shot left-ventricular dilation: the CLIP model's and the random video tower's."""
    from sklearn.metrics import roc_auc_score

    from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot

    cfg = ZeroshotConfig(store_root=str(store), clip_path=str(clip_path), prompts_file=str(prompts), out_dir=str(out))
    result = run_zeroshot(cfg)
    return [roc_auc_score(t[LVD], t[f"{LVD}_score"]) for t in (result.predictions, result.random_predictions)]


@pytest.mark.slow
@pytest.mark.parametrize("mutation", [None, _shuffle_texts_within_batch])
def test_pretraining_learns_retrieval_and_zero_shot(recall_store, mutation, monkeypatch, tmp_path):
    """Held-out recall beats the shuffled-report control, and zero-shot beats the random tower on the test split;
    with the texts shuffled within every batch neither holds."""
    store, control, prompts = recall_store
    if mutation is not None:
        mutation(monkeypatch)
    score = _recall_score(pretrain(_recall_cfg(store), tmp_path / "run").metrics)
    trained, random = _zero_shot_auroc(store, tmp_path / "run" / "clip.pt", prompts, tmp_path / "zs")
    learned = mutation is None
    assert (score > control + 0.15) == learned, (score, control)
    assert (trained >= 0.8 and trained > random + 0.2) == learned, (trained, random)
