from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
import torch.nn.functional as F

from cmrclip.errors import CheckpointError
from cmrclip.models.convert import (
    CheckpointInfo,
    convert_state_dict,
    file_sha256,
    import_checkpoint,
    load_video_encoder,
    save_video_encoder,
)
from cmrclip.models.registry import build_video_encoder

TEXT_KEYS = {
    "model.text_encoder.embeddings.word_embeddings.weight": (30, 8),
    "model.text_proj.weight": (512, 8),
    "model.logit_scale": (),
}


def _shapes(shared_data, spatial_tokens: int = 3136) -> dict[str, list[int]]:
    shapes = json.loads((shared_data / "mvit_b_keys.json").read_text())["keys"]
    shapes["video_encoder.cls_positional_encoding.pos_embed_spatial"] = [1, spatial_tokens, 96]
    return shapes


def _random_tensor(name: str, shape: list[int], gen: torch.Generator) -> torch.Tensor:
    """Weights of realistic scale: fan-in scaled matrices, LayerNorm gains near 1, small biases."""
    x = torch.randn(shape, generator=gen)
    if name.endswith("bias"):
        return 0.1 * x
    if "norm" in name and name.endswith("weight"):
        return 1.0 + 0.1 * x
    if "pos" in name or "cls_token" in name:
        return 0.5 * x
    return x / math.sqrt(math.prod(shape[1:]))


def _lightning(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {f"model.{k}": _random_tensor(k, v, gen) for k, v in shapes.items()}
    state.update({k: torch.randn(v, generator=gen) for k, v in TEXT_KEYS.items()})
    return state


def _kinetics(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {
        k.removeprefix("video_encoder."): _random_tensor(k, v, gen)
        for k, v in shapes.items()
        if k.startswith("video_encoder.")
    }
    state.update({"head.proj.weight": torch.randn(400, 768, generator=gen), "head.proj.bias": torch.zeros(400)})
    return state


@pytest.fixture(scope="module")
def full_shapes(shared_data) -> dict[str, list[int]]:
    return _shapes(shared_data)


@pytest.fixture(scope="module")
def lightning_full(full_shapes) -> dict[str, torch.Tensor]:
    return _lightning(full_shapes)


@pytest.fixture(scope="module")
def kinetics_full(full_shapes) -> dict[str, torch.Tensor]:
    return _kinetics(full_shapes)


@pytest.fixture(scope="module")
def mvit_b():
    return build_video_encoder("mvit_b_16x4")


@pytest.mark.slow
def test_lightning_checkpoint_loads_strictly_with_every_key_accounted_for(full_shapes, lightning_full, tmp_path):
    foreign = lightning_full
    path = tmp_path / "cmr_c0.1.ckpt"
    torch.save({"state_dict": foreign, "epoch": 599}, path)
    enc = load_video_encoder(path)
    assert not enc.training and enc.config.input_size == (16, 224, 224)
    ours = enc.state_dict()
    assert len(ours) == len(full_shapes) == 377
    for key in full_shapes:
        assert torch.equal(ours[key], foreign[f"model.{key}"]), key
    info = enc.info
    assert info.source_format == "lightning" and info.normalization == "legacy"
    assert info.sha256 == file_sha256(path) == info.source_sha256
    assert "ignored 3 non-video keys" in info.notes


@pytest.mark.slow
def test_kinetics_checkpoint_loads_backbone_and_initialises_projection(full_shapes, kinetics_full, mvit_b, tmp_path):
    foreign = kinetics_full
    path = tmp_path / "MVIT_B_16x4.pyth"
    torch.save({"model_state": foreign}, path)
    enc = load_video_encoder(path)
    ours = enc.state_dict()
    for key in full_shapes:
        if key.startswith("video_encoder."):
            assert torch.equal(ours[key], foreign[key.removeprefix("video_encoder.")]), key
    assert torch.equal(ours["video_proj.weight"], mvit_b.video_proj.weight)  # the same seeded initialisation
    assert any("video_proj randomly initialised" in n for n in enc.info.notes)
    assert enc.info.source_format == "kinetics"


def test_report_lists_ignored_and_initialised_keys(lightning_full, kinetics_full, mvit_b):
    _, report = convert_state_dict(lightning_full, "lightning", mvit_b)
    assert sorted(report.ignored) == sorted(TEXT_KEYS) and report.mapped == 377 and report.initialised == []
    _, report = convert_state_dict(kinetics_full, "kinetics", mvit_b)
    assert report.ignored == ["head.proj.weight", "head.proj.bias"]
    assert report.initialised == ["video_proj.weight", "video_proj.bias"] and report.mapped == 375


def test_renamed_missing_and_misshaped_keys_are_named(lightning_full, mvit_b):
    foreign = dict(lightning_full)
    foreign["model.video_encoder.blocks.3.attn.poolq.weight"] = foreign.pop(
        "model.video_encoder.blocks.3.attn.pool_q.weight"
    )
    del foreign["model.video_encoder.cls_positional_encoding.pos_embed_temporal"]
    foreign["model.video_encoder.blocks.0.mlp.fc2.weight"] = torch.zeros(96, 384)
    with pytest.raises(CheckpointError) as err:
        convert_state_dict(foreign, "lightning", mvit_b)
    msg = str(err.value)
    assert "missing (2): video_encoder.cls_positional_encoding.pos_embed_temporal, " in msg
    assert "video_encoder.blocks.3.attn.pool_q.weight" in msg
    assert "unexpected (1): model.video_encoder.blocks.3.attn.poolq.weight" in msg
    assert "mis-shaped (1): model.video_encoder.blocks.0.mlp.fc2.weight (96, 384) vs model (192, 384)" in msg


def test_str_strip_style_prefix_damage_is_caught(kinetics_full, mvit_b):
    """The original loader's ``str.strip("model.")`` mangled keys; such names never load silently."""
    foreign = dict(kinetics_full)
    foreign["s_embed_spatial"] = foreign.pop("cls_positional_encoding.pos_embed_spatial")
    with pytest.raises(CheckpointError, match=r"unexpected \(1\): s_embed_spatial"):
        convert_state_dict(foreign, "kinetics", mvit_b)


def test_our_format_round_trips_with_info(tmp_path):
    enc = build_video_encoder("tiny", seed=4).eval()
    info = CheckpointInfo(metrics={"recall@5": 0.31}, preprocessing="store v1, 64x64")
    sha = save_video_encoder(enc, tmp_path / "encoder.pt", info)
    loaded = load_video_encoder(tmp_path / "encoder.pt")
    assert loaded.config == enc.config and loaded.info.metrics == {"recall@5": 0.31}
    assert loaded.info.preset == "tiny" and loaded.info.sha256 == sha and loaded.info.normalization == "unit"
    x = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), enc(x))
    out = import_checkpoint(tmp_path / "encoder.pt", tmp_path / "again.pt")
    assert out.sha256 == file_sha256(tmp_path / "again.pt")
    with pytest.raises(CheckpointError, match="holds video preset 'tiny', not the requested 'small'"):
        load_video_encoder(tmp_path / "encoder.pt", preset="small")


def test_unreadable_or_unknown_files_raise(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_video_encoder(tmp_path / "none.pt")
    torch.save({"weights": {}}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"unrecognised checkpoint \(top-level \['weights'\]\)"):
        load_video_encoder(tmp_path / "odd.pt")
    torch.save({"format": "cmrclip-video-encoder/1", "preset": {"depth": "deep"}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="stored video preset is invalid"):
        load_video_encoder(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_video_encoder(tmp_path / "junk.pt")


def test_pickled_objects_need_explicit_trust(tmp_path):
    enc = build_video_encoder("tiny")
    state = {f"model.{k}": v for k, v in enc.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": argparse.Namespace(lr=1e-4)}, tmp_path / "hp.ckpt")
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        load_video_encoder(tmp_path / "hp.ckpt", preset="tiny")
    assert load_video_encoder(tmp_path / "hp.ckpt", preset="tiny", allow_pickle=True).config.name == "tiny"


# --- parity: a second, naive MViT-B forward written from REFERENCE.md, reading the state dict directly ---

HEADS = [1, 2, 2] + [4] * 11 + [8, 8]
Q_POOL_BLOCKS = {1, 3, 14}
KV_STRIDE = [8, 4, 4] + [2] * 11 + [1, 1]  # spatial; never temporal


def _ln(x, sd, name, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def _lin(x, sd, name):
    return torch.einsum("...i,oi->...o", x, sd[f"{name}.weight"]) + sd[f"{name}.bias"]


def _naive_pool(t, weight, stride, grid):
    """t: (B, heads, 1+N, d); depthwise 3x3x3 conv per (sample, head) with CLS held out."""
    b, h, _, d = t.shape
    out = []
    for i in range(b):
        heads = []
        for j in range(h):
            vol = t[i, j, 1:].T.reshape(1, d, *grid)
            pooled = F.conv3d(vol, weight, stride=(1, stride, stride), padding=1, groups=d)[0]
            heads.append(torch.cat([t[i, j, :1], pooled.reshape(d, -1).T]))
        out.append(torch.stack(heads))
    return torch.stack(out), tuple(pooled.shape[1:])


def _naive_block(x, sd, i, grid):
    p = f"model.video_encoder.blocks.{i}"
    b, n, dim = x.shape
    heads = HEADS[i]
    d = dim // heads
    y = _ln(x, sd, f"{p}.norm1", 1e-6)
    q, k, v = (_lin(y, sd, f"{p}.attn.{name}").reshape(b, n, heads, d).transpose(1, 2) for name in "qkv")
    grid_q = grid
    if i in Q_POOL_BLOCKS:
        q, grid_q = _naive_pool(q, sd[f"{p}.attn.pool_q.weight"], 2, grid)
        q = _ln(q, sd, f"{p}.attn.norm_q", 1e-5)
    k = _ln(_naive_pool(k, sd[f"{p}.attn.pool_k.weight"], KV_STRIDE[i], grid)[0], sd, f"{p}.attn.norm_k", 1e-5)
    v = _ln(_naive_pool(v, sd[f"{p}.attn.pool_v.weight"], KV_STRIDE[i], grid)[0], sd, f"{p}.attn.norm_v", 1e-5)
    attn = torch.softmax(torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d), dim=-1)
    y = _lin(torch.einsum("bhqk,bhkd->bqhd", attn, v).reshape(b, -1, dim), sd, f"{p}.attn.proj")
    if i in Q_POOL_BLOCKS:
        vol = x[:, 1:].transpose(1, 2).reshape(b, dim, *grid)
        pooled = F.max_pool3d(vol, (1, 3, 3), (1, 2, 2), (0, 1, 1)).flatten(2).transpose(1, 2)
        x = torch.cat([x[:, :1], pooled], 1)
    x = x + y
    h = _ln(x, sd, f"{p}.norm2", 1e-6)
    hidden = _lin(h, sd, f"{p}.mlp.fc1")
    mlp = _lin(0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2))), sd, f"{p}.mlp.fc2")
    skip = _lin(h, sd, f"{p}.proj") if f"{p}.proj.weight" in sd else x
    return skip + mlp, grid_q


def _naive_mvit_b(sd, clip):
    pre = "model.video_encoder"
    stem = F.conv3d(
        clip,
        sd[f"{pre}.patch_embed.patch_model.weight"],
        sd[f"{pre}.patch_embed.patch_model.bias"],
        (2, 4, 4),
        (1, 3, 3),
    )
    grid = tuple(stem.shape[2:])
    tokens = stem.flatten(2).transpose(1, 2)
    enc = f"{pre}.cls_positional_encoding"
    pos = sd[f"{enc}.pos_embed_temporal"][:, :, None, :] + sd[f"{enc}.pos_embed_spatial"][:, None, :, :]
    tokens = tokens + pos.reshape(1, -1, 96)
    cls = sd[f"{enc}.cls_token"] + sd[f"{enc}.pos_embed_class"]
    x = torch.cat([cls.expand(clip.shape[0], -1, -1), tokens], 1)
    for i in range(16):
        x, grid = _naive_block(x, sd, i, grid)
    feats = _ln(x, sd, f"{pre}.norm_embed", 1e-6)[:, 0]
    return feats, F.normalize(_lin(feats, sd, "model.video_proj"), dim=-1)


@pytest.mark.slow
def test_parity_with_a_naive_mvit_b(shared_data, tmp_path):
    """MViT-B at 16x64x64 (positional embeddings sized 16x16): ours vs the naive forward, <= 1e-5."""
    foreign = _lightning(_shapes(shared_data, spatial_tokens=16 * 16), seed=7)
    torch.save({"state_dict": foreign}, tmp_path / "small.ckpt")
    enc = load_video_encoder(tmp_path / "small.ckpt")
    assert enc.config.input_size == (16, 64, 64)
    clip = torch.randn(1, 3, 16, 64, 64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        feats, emb = _naive_mvit_b(foreign, clip)
        ours = enc(clip, return_attention=True)
        torch.testing.assert_close(enc(clip), emb, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.embedding, emb, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.features, feats, atol=3e-5, rtol=0)  # features reach |x| ~ 4
    assert feats.shape == (1, 768) and emb.shape == (1, 512)


def test_cli_weights_import(tmp_path):
    from typer.testing import CliRunner

    from cmrclip.cli import app

    enc = build_video_encoder("tiny", seed=9)
    state = {f"model.{k}": v for k, v in enc.state_dict().items()} | {"model.text_proj.weight": torch.zeros(2, 2)}
    torch.save({"state_dict": state}, tmp_path / "orig.ckpt")
    runner = CliRunner()
    result = runner.invoke(
        app, ["weights", "import", str(tmp_path / "orig.ckpt"), "--out", str(tmp_path / "enc.pt"), "--preset", "tiny"]
    )
    assert result.exit_code == 0, result.output
    assert "lightning -> tiny" in result.output
    loaded = load_video_encoder(tmp_path / "enc.pt")
    assert loaded.info.source_format == "lightning" and loaded.info.source_sha256 == file_sha256(tmp_path / "orig.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), enc.state_dict().values(), strict=True))
    del state["model.video_proj.bias"]
    torch.save({"state_dict": state}, tmp_path / "broken.ckpt")
    result = runner.invoke(
        app, ["weights", "import", str(tmp_path / "broken.ckpt"), "--out", str(tmp_path / "x.pt"), "--preset", "tiny"]
    )
    assert result.exit_code == 2
    assert "missing (1): video_proj.bias" in result.output


def test_top_level_api_exposes_the_loader():
    import cmrclip

    assert cmrclip.load_video_encoder is load_video_encoder
