from __future__ import annotations

import math

import pytest
import torch

from cmrclip.errors import ConfigError
from cmrclip.models.clip import ClipModel, ClipOutput
from cmrclip.models.loss import ClipLoss
from cmrclip.models.registry import build_video_encoder, seeded_init
from cmrclip.models.text import TextConfig, TextEncoder

TEXT = {"vocab_size": 64, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}


def _model(trainable_layers: int | None = None) -> ClipModel:
    video = build_video_encoder("tiny", seed=0)
    text = seeded_init(lambda: TextEncoder(TextConfig(**TEXT, proj_dim=256, trainable_layers=trainable_layers)), 0)
    return ClipModel(video, text, embed_dim=256)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 64, (3, 7), generator=gen)
    return torch.randn(3, 3, 16, 64, 64, generator=gen), ids, torch.ones_like(ids)


def test_forward_returns_normalised_pairs_and_scale():
    model = _model()
    clips, ids, mask = _inputs()
    out = model(clips, ids, mask)
    assert isinstance(out, ClipOutput)
    assert out.video.shape == out.text.shape == (3, 256)
    torch.testing.assert_close(out.text.norm(dim=-1), torch.ones(3))
    assert float(out.logit_scale.detach()) == pytest.approx(1 / 0.07, rel=1e-5)
    torch.testing.assert_close(model.encode_video(clips, normalize=False).norm(dim=-1) > 0, torch.ones(3, dtype=bool))


def test_a_bag_of_clips_embeds_as_the_mean_of_its_clips():
    model = _model().eval()
    clips = _inputs()[0]
    with torch.no_grad():
        single = model.encode_video(clips)
        bags = model.encode_video(torch.stack([clips, clips.flip(0)]))  # 2 studies x 3 clips
    assert bags.shape == (2, 256)
    torch.testing.assert_close(bags[0], torch.nn.functional.normalize(single.mean(0), dim=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(bags[0], bags[1], atol=1e-5, rtol=0)  # clip order does not matter


def test_logit_scale_is_clamped_at_100():
    model = _model()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(500.0))
    assert float(model.scale().detach()) == pytest.approx(100.0)
    model.clamp_logit_scale_()
    assert float(model.logit_scale.detach()) == pytest.approx(math.log(100.0))


def test_cached_text_features_give_the_same_embeddings():
    model = _model(trainable_layers=0).eval()
    clips, ids, mask = _inputs()
    with torch.no_grad():
        direct = model(clips, ids, mask)
        cached = model(clips, text_features=model.text.features(ids, mask))
    torch.testing.assert_close(direct.text, cached.text)


def test_a_training_step_lowers_the_loss():
    model = _model().eval()  # no dropout: the same batch must score better after each step
    clips, ids, mask = _inputs()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        out = model(clips, ids, mask)
        loss = ClipLoss()(out.video, out.text, out.logit_scale).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert model.logit_scale.grad is not None


def test_wrong_widths_and_inputs_raise():
    video = build_video_encoder("tiny")
    with pytest.raises(ConfigError, match="video tower projects to 256"):
        ClipModel(video, None, embed_dim=512)
    with pytest.raises(ConfigError, match="text tower projects to 512"):
        ClipModel(video, TextEncoder(TextConfig(**TEXT)), embed_dim=256)
    model = ClipModel(video, None, embed_dim=256)
    with pytest.raises(ConfigError, match="no text tower"):
        model.encode_text(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3))
    with pytest.raises(ConfigError, match="either input_ids"):
        _model()(torch.zeros(1, 3, 16, 64, 64))
