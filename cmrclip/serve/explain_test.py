import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cmrclip.models.registry import build_video_encoder
from cmrclip.models.video import block_specs
from cmrclip.serve.explain import _window_matrix, attention_rollout, explain_study, overlay_gif, write_explanations


def _dense_rollout(model, clip):
    """Rollout with dense token matrices (kron of per-axis windows), CLS row of the product."""
    out = model(clip[None], return_attention=True)
    specs = block_specs(model.config)
    grid = specs[0].grid_in
    total = torch.eye(1 + int(np.prod(grid)))
    inputs = [grid, *out.grids_q[:-1]]
    for i, attn in enumerate(out.attentions):
        a = attn[0].mean(0)
        g_in, g_q, g_kv, spec = inputs[i], out.grids_q[i], out.grids_kv[i], specs[i]

        def dense(g_out, stride, kernel, g_in=g_in):
            m = torch.ones(1, 1)
            for o, n, s, k in zip(g_out, g_in, stride, kernel, strict=True):
                m = torch.kron(m, _window_matrix(o, n, s, k))
            full = torch.zeros(1 + m.shape[0], 1 + m.shape[1])
            full[0, 0] = 1
            full[1:, 1:] = m
            return full

        skip = dense(g_q, spec.stride_q, tuple(s + 1 if s > 1 else 1 for s in spec.stride_q))
        keys = dense(g_kv, spec.stride_kv, model.config.pool_kernel)
        total = (0.5 * skip + 0.5 * a @ keys) @ total
    row = total[0, 1:]
    assert row.sum() + total[0, 0] == pytest.approx(1.0, abs=1e-4)  # relevance is conserved
    heat = row.reshape(grid)
    return (heat - heat.min()) / (heat.max() - heat.min())


def test_rollout_matches_a_dense_computation():
    model = build_video_encoder("tiny", seed=3).eval()
    clip = torch.randn(3, 16, 64, 64, generator=torch.Generator().manual_seed(0))
    fast = attention_rollout(model, clip)
    assert fast.shape == (4, 8, 8)
    with torch.no_grad():
        dense = _dense_rollout(model, clip)
    torch.testing.assert_close(fast, dense, atol=1e-5, rtol=1e-4)
    assert fast.min() == 0 and fast.max() == 1


def test_window_matrix_covers_pooling_windows():
    m = _window_matrix(4, 8, 2, 3)  # kernel 3, stride 2, padding 1
    assert m.shape == (4, 8)
    assert torch.allclose(m.sum(1), torch.ones(4))
    assert m[0, :2].tolist() == [0.5, 0.5]  # window [-1, 1] clipped to [0, 1]
    assert (m[1, 1:4] > 0).all() and m[1, 0] == 0 and m[1, 4] == 0


def test_overlay_gif_is_an_animated_gif():
    frames = np.tile(np.linspace(0, 200, 32, dtype=np.uint8), (5, 32, 1))
    frames += np.arange(5, dtype=np.uint8)[:, None, None] * 10  # every frame differs
    heat = np.zeros((5, 32, 32), np.float32)
    heat[:, :8, :8] = 0.5  # the ramp is red-orange here
    gif = overlay_gif(frames, heat)
    image = Image.open(io.BytesIO(gif))
    assert image.format == "GIF" and image.n_frames == 5
    first = np.asarray(image.convert("RGB"))
    assert int(first[2, 2, 0]) > int(first[2, 2, 2]) + 50  # hot corner is red-tinted
    assert abs(int(first[20, 20, 0]) - int(first[20, 20, 2])) < 10  # elsewhere grey


@pytest.mark.slow
def test_explain_study_writes_gifs_and_weights(tiny_model, phantom_store, tmp_path):
    model = tiny_model
    study = model.load_study(f"{phantom_store.root}#a1b2c3d4e5f60718")
    clips = explain_study(model, study)
    assert [(c.view, c.slice_index) for c in clips] == [(r.view, r.slice_index) for r in study.refs]
    assert sum(c.mil_weight for c in clips) == pytest.approx(1.0, abs=1e-5)
    for clip in clips:
        assert clip.rollout.shape == clip.frames.shape == clip.gradient.shape
        assert clip.rollout.min() >= 0 and clip.rollout.max() <= 1
        assert clip.gradient.max() > 0
    index = json.loads(write_explanations(clips, tmp_path).read_text())
    assert len(index["clips"]) == len(clips)
    for entry in index["clips"]:
        assert Image.open(tmp_path / entry["rollout"]).n_frames == 16
        assert (tmp_path / entry["gradient"]).is_file()
    assert clips[0].to_dict(with_gif=True)["rollout_gif"].startswith("data:image/gif;base64,")


def test_gradient_maps_equal_whole_study_gradients(tiny_model, phantom_store):
    """Clip-by-clip differentiation gives the gradient of the study output w.r.t. every clip."""
    from cmrclip.serve.explain import gradient_maps

    study = tiny_model.load_study(f"{phantom_store.root}#a1b2c3d4e5f60718")
    net = tiny_model.network
    clips = study.clips.clone().requires_grad_(True)
    mask = torch.ones(1, len(clips), dtype=torch.bool)
    (grad,) = torch.autograd.grad(net(clip_mask=mask, clips=clips[None]).regression[0, 0], clips)
    sal = (grad * study.clips).abs().sum(dim=1)
    expected = (sal / torch.quantile(sal.flatten(1), 0.99, dim=1)[:, None, None, None]).clamp(0, 1)
    torch.testing.assert_close(gradient_maps(tiny_model, study), expected, atol=1e-4, rtol=1e-3)
