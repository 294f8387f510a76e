from __future__ import annotations

import pytest
import torch
from torch import nn

from cmrclip.errors import ConfigError
from cmrclip.models.heads import (
    GatedAttentionMIL,
    HeadConfig,
    MeanPool,
    Mode,
    StudyModel,
    configure_trainable,
    pos_weights,
    study_embedding,
    study_loss,
)


class TinyEncoder(nn.Module):
    """features(): conv + global pool + linear; has its own video_proj like MViT."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(4)
        self.video_proj = nn.Linear(4, 6)

    def features(self, x):
        return self.norm(self.conv(x).mean(dim=(2, 3, 4)))


def _model(pooling="gated_attention", per_target=False, targets=("A", "B", "normal"), prompts=None):
    torch.manual_seed(0)
    enc = TinyEncoder()
    head = HeadConfig(
        pooling=pooling, hidden=8, attention_dim=4, dropout=0.0, per_target=per_target, prompt_prior=prompts is not None
    )
    return StudyModel(
        enc,
        enc.video_proj,
        feature_dim=4,
        head=head,
        targets=list(targets),
        regression=["lvef"],
        prompt_weights=prompts,
    )


def _batch(b=3, n=4):
    g = torch.Generator().manual_seed(1)
    mask = torch.tensor([[True] * n, [True, True, False, False], [True] + [False] * (n - 1)])[:b]
    return {
        "clips": torch.randn(b, n, 3, 2, 5, 5, generator=g),
        "clip_mask": mask,
        "targets": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])[:b],
        "target_mask": torch.tensor([[True, True, True], [True, False, True], [True, True, True]])[:b],
        "regression": torch.tensor([[30.0], [60.0], [0.0]])[:b],
        "regression_mask": torch.tensor([[True], [True], [False]])[:b],
    }


def test_attention_is_masked_and_sums_to_one():
    pool = GatedAttentionMIL(6, hidden=8, attention_dim=4, dropout=0.0)
    x = torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    pooled, w = pool(x, mask)
    assert pooled.shape == (2, 8) and w.shape == (2, 5)
    assert torch.allclose(w.sum(1), torch.ones(2))
    assert (w[0, 3:] == 0).all()
    # padding values never leak into the result
    x2 = x.clone()
    x2[0, 3:] = 1e3
    assert torch.allclose(pool(x2, mask)[0][0], pooled[0])
    _, wm = MeanPool(6, hidden=8, dropout=0.0)(x, mask)
    assert torch.allclose(wm[0], torch.tensor([1 / 3] * 3 + [0, 0]))


@pytest.mark.parametrize(
    ("pooling", "per_target"), [("gated_attention", False), ("mean", False), ("gated_attention", True)]
)
def test_output_shapes_and_lvef_starts_at_typical_value(pooling, per_target):
    model = _model(pooling, per_target).eval()
    b = _batch()
    out = model(b["clip_mask"], clips=b["clips"])
    assert out.regression.shape == (3, 1) and out.logits.shape == (3, 3)
    assert out.attention.shape == (3, 4)
    assert out.attention_per_head.shape == (3, 4 if per_target else 1, 4)
    assert torch.allclose(out.lvef, torch.full((3,), 57.0), atol=1.0)
    assert (out.attention[2, 1:] == 0).all()
    # cached features give the same result as clips
    feats = model.encode_clips(b["clips"], b["clip_mask"])
    assert torch.allclose(model(b["clip_mask"], features=feats).logits, out.logits)


@pytest.mark.parametrize("mode", ["linear", "projection", "finetune", "scratch"])
@pytest.mark.parametrize("per_target", [False, True])
def test_every_trainable_parameter_changes_and_frozen_ones_do_not(mode, per_target):
    prompts = torch.randn(3, 6) if per_target else None  # the prompt prior trains with the head
    model = _model(per_target=per_target, prompts=prompts)
    groups = configure_trainable(model, mode, lr=1e-2, encoder_lr=1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    b = _batch()
    model.train()
    loss = study_loss(model(b["clip_mask"], clips=b["clips"]), b, model).total
    loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable
    expect_encoder = mode in ("finetune", "scratch")
    expect_proj = mode != "linear"
    assert any(n.startswith("encoder.conv") for n in trainable) == expect_encoder
    assert any(n.startswith("projection") or "video_proj" in n for n in trainable) == expect_proj
    assert any(n.startswith("pools.") for n in trainable)
    assert any(n.startswith("prompt_prior.") for n in trainable) == per_target
    if mode == "finetune":
        lrs = {g["name"]: g["lr"] for g in groups}
        assert lrs["encoder"] == 1e-3 and lrs["head"] == 1e-2


def test_former_mode_names_are_accepted_with_a_warning(caplog):
    from pydantic import TypeAdapter, ValidationError

    modes = TypeAdapter(Mode)
    assert modes.validate_python("transfer") == "finetune"
    assert "now called 'finetune'" in caplog.text
    assert modes.validate_python("projection") == "projection"
    with pytest.raises(ValidationError, match="projection"):
        modes.validate_python("everything")
    model = _model()
    groups = configure_trainable(model, "transfer", lr=1e-2, encoder_lr=1e-3)
    assert {g["name"] for g in groups} == {"head", "projection", "encoder"}


def test_prompt_prior_starts_as_the_zero_shot_classifier():
    prompts = torch.randn(3, 6)
    model = _model(prompts=prompts).eval()
    for out in model.outputs:  # silence the MIL head: what is left is the prior
        nn.init.zeros_(out.weight)
    b = _batch()
    out = model(b["clip_mask"], clips=b["clips"])
    study = study_embedding(out.embeddings, b["clip_mask"])
    torch.testing.assert_close(out.logits, study @ prompts.T)
    one = model(b["clip_mask"][2:, :1], clips=b["clips"][2:, :1])  # padding does not change a study's embedding
    torch.testing.assert_close(one.logits, out.logits[2:])
    torch.testing.assert_close(study.norm(dim=-1), torch.ones(3))
    with pytest.raises(ConfigError, match=r"prompt weights of shape \(3, 5\)"):
        _model(prompts=torch.zeros(3, 5))


def test_unknown_mode_raises():
    with pytest.raises(ConfigError, match="unknown mode 'frozen'"):
        configure_trainable(_model(), "frozen", lr=1e-3)


def test_loss_ignores_unknown_labels():
    model = _model().eval()
    b = _batch()
    out = model(b["clip_mask"], clips=b["clips"])
    base = study_loss(out, b, model)
    flipped = dict(b, targets=b["targets"].clone(), regression=b["regression"].clone())
    flipped["targets"][1, 1] = 1 - flipped["targets"][1, 1]  # masked label
    flipped["regression"][2, 0] = 99.0  # masked LVEF
    other = study_loss(out, flipped, model)
    assert torch.allclose(base.total, other.total)
    # Huber (delta 1) in scale units (10 % LVEF), averaged over the two known LVEFs
    e0, e1 = (abs(out.lvef[0].item() - 30.0) / 10, abs(out.lvef[1].item() - 60.0) / 10)
    assert e0 > 1 > e1
    assert base.regression.item() == pytest.approx(((e0 - 0.5) + 0.5 * e1**2) / 2, rel=1e-4)


def test_pos_weights_are_neg_over_pos_on_known_labels():
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    mask = torch.tensor([[True, True], [True, True], [True, False], [True, True]])
    assert pos_weights(labels, mask).tolist() == [3.0, 1.0]


def test_head_learns_lvef_and_a_label_from_cached_features():
    g = torch.Generator().manual_seed(0)
    n, clips = 64, 3
    lvef = torch.rand(n, generator=g) * 50 + 20
    label = (torch.rand(n, generator=g) > 0.7).float()
    feats = torch.randn(n, clips, 4, generator=g) * 0.1
    feats[:, :, 0] += ((lvef - 45) / 15)[:, None]  # the signal is in every clip
    feats[:, 1, 1] += 2 * label  # and the label only in clip 1: attention should find it
    mask = torch.ones(n, clips, dtype=torch.bool)
    model = _model(targets=("A",))
    opt = torch.optim.AdamW(configure_trainable(model, "linear", lr=1e-2), weight_decay=0.0)
    batch = {"targets": label[:, None], "target_mask": torch.ones(n, 1, dtype=torch.bool),
             "regression": lvef[:, None], "regression_mask": torch.ones(n, 1, dtype=torch.bool)}  # fmt: skip
    model.eval()
    start = (model(mask, features=feats).lvef - lvef).abs().mean()
    model.train()
    for _ in range(150):
        opt.zero_grad()
        study_loss(model(mask, features=feats), batch, model).total.backward()
        opt.step()
    model.eval()
    out = model(mask, features=feats)
    assert (out.lvef - lvef).abs().mean() < 0.3 * start
    pos, neg = out.logits[label == 1, 0], out.logits[label == 0, 0]
    assert pos.min() > neg.max()
    assert out.attention[label == 1, 1].mean() > 0.5
