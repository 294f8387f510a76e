from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmrclip.errors import ConfigError, LabelError
from cmrclip.models.bundle import load_bundle
from cmrclip.models.convert import save_video_encoder
from cmrclip.models.prompts import (
    LvefPrompts,
    clip_text_fn,
    condition_scores,
    load_clip_model,
    load_prompts,
    lvef_estimates,
    prompt_classifier,
    retrieval_recall,
)
from cmrclip.train.finetune import FinetuneConfig, run_finetune
from cmrclip.train.finetune_test import HCM


def test_retrieval_recall_counts_the_true_pair_rank():
    video = F.normalize(torch.eye(4) + 0.1, dim=-1)
    text = video.clone()
    r = retrieval_recall(video, text, ks=(1,))
    assert r == {"n_candidates": 4.0, "video_to_text_r@1": 1.0, "text_to_video_r@1": 1.0}
    swapped = text[[1, 0, 2, 3]]  # studies 0 and 1 now rank their own report second
    r = retrieval_recall(video, swapped, ks=(1, 2))
    # the three other reports tie for queries 0 and 1, so rank 2 is reached with probability 1/3 there
    assert r["video_to_text_r@1"] == 0.5
    assert r["video_to_text_r@2"] == pytest.approx((1 / 3 + 1 / 3 + 1 + 1) / 4)


def fake_text(vectors):
    def encode(texts):
        return torch.stack([vectors[t] for t in texts])

    return encode


def test_condition_and_lvef_scores_follow_similarity():
    keys = ["Amyloid"]
    prompts = load_prompts().model_copy(update={"conditions": {}})
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    vectors = {"Cardiac amyloidosis.": pos, "Findings consistent with cardiac amyloidosis.": pos}
    vectors |= {"No cardiac amyloidosis.": neg, "No evidence of cardiac amyloidosis.": neg}
    study = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scores = condition_scores(study, fake_text(vectors), prompts, keys, scale=10.0)
    assert scores.shape == (2, 1) and scores[0, 0] > 0.99 and scores[1, 0] < 0.01
    lvef = LvefPrompts(start=20, stop=60, step=20)
    grid = {"LVEF is estimated at 20%.": pos, "LVEF is estimated at 40%.": F.normalize(pos + neg, dim=0),
            "LVEF is estimated at 60%.": neg}  # fmt: skip
    est = lvef_estimates(study, fake_text(grid), lvef, scale=100.0)
    assert est[0] == pytest.approx(20.0, abs=0.1) and est[1] == pytest.approx(60.0, abs=0.1)


def test_unknown_condition_in_prompts_file(tmp_path):
    bad = tmp_path / "p.yaml"
    text = "templates: {positive: ['{name}'], negative: ['no {name}']}\n"
    bad.write_text(text + "conditions:\n  Nope: {positive: [a], negative: [b]}\n")
    with pytest.raises(LabelError, match=r"unknown condition\(s\) \['Nope'\]"):
        load_prompts(bad)


def test_prompt_classifier_is_zero_shot_as_a_linear_layer(clip_file):
    weights = prompt_classifier(clip_file / "clip.pt", [HCM, "normal"])
    assert weights.shape == (2, 32) and not weights[1].any()  # no prior for the derived target
    clip, tokenizer = load_clip_model(clip_file / "clip.pt")
    study = F.normalize(torch.randn(5, 32, generator=torch.Generator().manual_seed(0)), dim=-1)
    expected = condition_scores(
        study, clip_text_fn(clip, tokenizer), load_prompts(), [HCM], float(clip.scale().detach())
    )
    np.testing.assert_allclose(torch.sigmoid(study @ weights[0]).numpy(), expected[:, 0], atol=1e-6)


@pytest.mark.slow
def test_finetune_with_a_prompt_prior_reloads_from_its_bundle(clip_file, tmp_path):
    clip, _ = load_clip_model(clip_file / "clip.pt")
    save_video_encoder(clip.video, tmp_path / "encoder.pt")
    cfg = FinetuneConfig(
        store_root=str(clip_file / "store"), out_dir=str(tmp_path / "run"), encoder_path=str(tmp_path / "encoder.pt"),
        targets=[HCM], epochs=2, batch_size=4, val_share=0.25, test_share=0.25,
        head={"hidden": 16, "attention_dim": 8, "prompt_prior": True},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="prompt_prior needs clip_path"):
        run_finetune(cfg)
    result = run_finetune(cfg.model_copy(update={"clip_path": str(clip_file / "clip.pt")}))
    trained = load_bundle(result.bundle).model.prompt_prior.weight.detach()
    start = prompt_classifier(clip_file / "clip.pt", [HCM, "normal"])
    assert trained[1].any() and not torch.equal(trained[0], start[0])  # trained from the prior, saved, reloaded
    assert F.cosine_similarity(trained[0], start[0], dim=0) > 0.5  # ... and still close to it after two epochs
