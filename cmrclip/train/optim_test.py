from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cmrclip.errors import ConfigError
from cmrclip.models.clip import ClipModel
from cmrclip.models.registry import build_video_encoder
from cmrclip.models.text import TextConfig, TextEncoder
from cmrclip.train.optim import (
    OptimConfig,
    build_optimizer,
    build_scheduler,
    check_optimizer_covers,
    cosine_with_warmup,
)


def _clip(trainable_layers):
    video = build_video_encoder(
        "tiny", overrides={"input_size": (8, 32, 32), "depth": 2, "stage_starts": (1,), "proj_dim": 16}
    )
    text = TextEncoder(
        TextConfig(hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32, proj_dim=16,
                   trainable_layers=trainable_layers)
    )  # fmt: skip
    return ClipModel(video, text, embed_dim=16)


@pytest.mark.parametrize("trainable_layers", [None, 0, 1])
def test_optimizer_holds_every_trainable_parameter_once(trainable_layers):
    model = _clip(trainable_layers)
    opt = build_optimizer(model, OptimConfig())
    held = [p for g in opt.param_groups for p in g["params"]]
    assert len(held) == len({id(p) for p in held})
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in held} == trainable
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert "logit_scale" not in decayed and not any("norm" in n or n.endswith("bias") for n in decayed)
    lr = {names[id(p)]: g["lr"] for g in opt.param_groups for p in g["params"]}
    assert all(v == (2e-5 if n.startswith("text.bert.") else 5e-4) for n, v in lr.items())  # pretrained BERT: slow
    assert any(n.startswith("text.bert.") for n in lr) == (trainable_layers != 0)


def test_missing_parameter_is_named():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    opt = torch.optim.AdamW(model[0].parameters())
    with pytest.raises(ConfigError, match=r"leaves out 2 trainable parameter\(s\): \['1.weight', '1.bias'\]"):
        check_optimizer_covers(model, opt)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameter"):
        build_optimizer(frozen, OptimConfig())


def test_cosine_with_warmup_shape():
    assert cosine_with_warmup(0, 4, 20) == pytest.approx(1 / 5)
    assert cosine_with_warmup(3, 4, 20) == pytest.approx(4 / 5)
    assert cosine_with_warmup(4, 4, 20) == pytest.approx(1.0)
    assert cosine_with_warmup(12, 4, 20) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cosine_with_warmup(20, 4, 20, min_ratio=0.1) == pytest.approx(0.1)


def test_scheduler_steps_learning_rate():
    model = nn.Linear(3, 3)
    opt = build_optimizer(model, OptimConfig(lr=1.0, warmup_steps=2))
    sched = build_scheduler(opt, OptimConfig(lr=1.0, warmup_steps=2), total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 3) and lrs[2] == pytest.approx(1.0) and lrs[-1] < lrs[3] < lrs[2]
    with pytest.raises(ConfigError, match="must be >= 1"):
        build_scheduler(opt, OptimConfig(), total_steps=0)
