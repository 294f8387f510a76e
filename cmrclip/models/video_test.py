from __future__ import annotations

import json

import pytest
import torch

from cmrclip.errors import ConfigError
from cmrclip.models.registry import build_video_encoder, load_preset
from cmrclip.models.video import MViT, MViTConfig, block_specs


@pytest.fixture(scope="module")
def tiny() -> MViT:
    return build_video_encoder("tiny", seed=1).eval()


def test_mvit_b_matches_original_keys_shapes_and_size(shared_data):
    expected = json.loads((shared_data / "mvit_b_keys.json").read_text())["keys"]
    model = build_video_encoder("mvit_b_16x4")
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(ours) == sorted(expected)
    assert {k: v for k, v in ours.items() if expected[k] != v} == {}
    backbone = sum(p.numel() for n, p in model.named_parameters() if n.startswith("video_encoder."))
    assert round(backbone / 1e6, 1) == 36.3
    assert model.out_dim == 768
    assert model.config.normalization == "legacy"


def test_mvit_b_block_table_follows_reference():
    specs = block_specs(load_preset("mvit_b_16x4"))
    assert [s.dim for s in specs] == [96] + [192] * 2 + [384] * 11 + [768] * 2
    assert [s.dim_out for s in specs] == [192] * 2 + [384] * 11 + [768] * 3
    assert [s.num_heads for s in specs] == [1, 2, 2] + [4] * 11 + [8, 8]
    assert [i for i, s in enumerate(specs) if s.stride_q != (1, 1, 1)] == [1, 3, 14]
    assert [s.stride_kv for s in specs] == [(1, 8, 8)] + [(1, 4, 4)] * 2 + [(1, 2, 2)] * 11 + [(1, 1, 1)] * 2
    assert specs[0].grid_in == (8, 56, 56)
    assert specs[-1].grid_q == (8, 7, 7)


def test_tiny_embedding_is_unit_norm_and_features_are_cls(tiny):
    x = torch.randn(3, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb, feats = tiny(x), tiny.features(x)
        raw = tiny.encode(x, normalize=False)
    assert emb.shape == (3, tiny.config.proj_dim)
    assert feats.shape == (3, tiny.out_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(raw / raw.norm(dim=-1, keepdim=True), emb)
    # samples do not leak into each other
    with torch.no_grad():
        torch.testing.assert_close(tiny(x[1:2]), emb[1:2], atol=1e-5, rtol=1e-5)


def test_attention_path_matches_sdpa_path(tiny):
    x = torch.randn(2, 3, 16, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fast = tiny(x)
        out = tiny(x, return_attention=True)
    torch.testing.assert_close(out.embedding, fast, atol=1e-5, rtol=1e-5)
    assert len(out.attentions) == tiny.config.depth
    for attn, gq, gk in zip(out.attentions, out.grids_q, out.grids_kv, strict=True):
        assert attn.shape[2:] == (1 + gq[0] * gq[1] * gq[2], 1 + gk[0] * gk[1] * gk[2])
        torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:3]))


def test_v2_options_train_and_agree_between_paths():
    model = build_video_encoder("tiny", overrides={"residual_pooling": True, "rel_pos": True})
    attn = model.video_encoder.blocks[1].attn
    with torch.no_grad():
        attn.rel_pos_h.normal_(0, 0.5)  # nonzero so that the bias matters
    x = torch.randn(2, 3, 16, 64, 64, generator=torch.Generator().manual_seed(3))
    out = model(x, return_attention=True)
    torch.testing.assert_close(out.embedding, model(x), atol=1e-5, rtol=1e-5)
    out.embedding.sum().backward()
    assert attn.rel_pos_t.grad is not None and attn.rel_pos_w.grad.abs().sum() > 0
    baseline = build_video_encoder("tiny")
    baseline.load_state_dict({k: v for k, v in model.state_dict().items() if "rel_pos" not in k})
    with torch.no_grad():
        assert not torch.allclose(baseline(x), model(x), atol=1e-4)


@pytest.mark.parametrize("overrides", [{}, {"rel_pos": True}])
def test_other_clip_sizes_resize_positions(overrides):
    model = build_video_encoder("tiny", overrides=overrides).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 96, 48)).shape == (1, model.config.proj_dim)


def test_build_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_video_encoder("tiny", seed=5), build_video_encoder("tiny", seed=5)
    c = build_video_encoder("tiny", seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.video_proj.weight, c.video_proj.weight)


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match="stage_starts"):
        MViT(MViTConfig(depth=4, stage_starts=(1, 4)))
    with pytest.raises(ValueError, match=r"expects \(B, 3, T, H, W\)"):
        build_video_encoder("tiny")(torch.zeros(1, 16, 64, 64))


def test_mean_pooling_averages_the_final_tokens_and_keeps_the_weights():
    cls_model = build_video_encoder("tiny", seed=3, overrides={"pooling": "cls"}).eval()
    mean_model = build_video_encoder("tiny", seed=3).eval()  # the tiny preset pools the mean
    assert mean_model.config.pooling == "mean"
    assert mean_model.state_dict().keys() == cls_model.state_dict().keys()
    x = torch.randn(2, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = {}
        hook = mean_model.video_encoder.norm_embed.register_forward_hook(lambda m, i, o: tokens.update(out=o))
        feats = mean_model.features(x)
        hook.remove()
        assert torch.allclose(feats, tokens["out"][:, 1:].mean(dim=1), atol=1e-6)
        assert not torch.allclose(feats, cls_model.features(x), atol=1e-3)
