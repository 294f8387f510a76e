"""Where the model looks: attention rollout through the MViT blocks and a gradient map, overlaid on each clip.

**Rollout** (Abnar & Zuidema, 2020) follows the final CLS token's relevance back through every block. A block mixes
its input tokens through two paths, weighted equally: the skip path (identity, or max-pooling where queries are
pooled) and attention (heads averaged), whose keys are pooled from the block's input grid. Relevance on pooled
tokens is spread back over the input tokens each pooling window covers, axis by axis on the (T, H, W) grid, so no
dense token-by-token matrix is ever formed (MViT-B has 25,088 stem tokens). The result lives on the stem's token grid
and is upsampled to the clip's frames.

**Gradient map**: |input x d output / d input| summed over channels, for the study's LVEF output (or its most likely
condition when the model has no LVEF), through the whole study model (MIL weights included).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cmrclip.models.video import MViT, block_specs
from cmrclip.serve.inputs import Study
from cmrclip.serve.predict import Model

__all__ = [
    "ClipExplanation",
    "attention_rollout",
    "explain_study",
    "gradient_maps",
    "overlay_gif",
    "write_explanations",
]

logger = logging.getLogger(__name__)

Triple = tuple[int, int, int]


@dataclass
class ClipExplanation:
    """Maps of one clip, at the overlay frames' size, each scaled to [0, 1]."""

    view: str
    slice_index: int
    mil_weight: float
    frames: np.ndarray  # (T, h, w) uint8
    rollout: np.ndarray  # (T, h, w) float32
    gradient: np.ndarray  # (T, h, w) float32

    def gifs(self) -> tuple[bytes, bytes]:
        """The rollout and gradient overlays as animated GIFs."""
        return overlay_gif(self.frames, self.rollout), overlay_gif(self.frames, self.gradient)

    def to_dict(self, with_gif: bool = False) -> dict[str, Any]:
        """JSON-ready summary; with ``with_gif`` the two overlays as ``data:image/gif;base64`` URIs."""
        out: dict[str, Any] = {"view": self.view, "slice_index": self.slice_index, "mil_weight": self.mil_weight}
        if with_gif:
            for name, gif in zip(("rollout_gif", "gradient_gif"), self.gifs(), strict=True):
                out[name] = "data:image/gif;base64," + base64.b64encode(gif).decode("ascii")
        return out


def _window_matrix(n_out: int, n_in: int, stride: int, kernel: int) -> torch.Tensor:
    """(n_out, n_in) rows spreading each pooled position uniformly over the input positions its window covers."""
    if n_out == n_in and stride == 1:
        return torch.eye(n_in)
    pad = kernel // 2
    m = torch.zeros(n_out, n_in)
    for o in range(n_out):
        lo, hi = max(0, o * stride - pad), min(n_in, o * stride - pad + kernel)
        m[o, lo:hi] = 1.0
    return m / m.sum(dim=1, keepdim=True).clamp_min(1.0)


def _spread(values: torch.Tensor, grid_out: Triple, grid_in: Triple, stride: Triple, kernel: Triple) -> torch.Tensor:
    """Map relevance on a pooled grid (flat, ``prod(grid_out)``) back onto the input grid (flat)."""
    mats = [_window_matrix(o, i, s, k) for o, i, s, k in zip(grid_out, grid_in, stride, kernel, strict=True)]
    grid = values.reshape(grid_out)
    return torch.einsum("abc,ai,bj,ck->ijk", grid, *mats).reshape(-1)


def _stem_grid(model: MViT, frames: int, height: int, width: int) -> Triple:
    cfg = model.config
    dims = (frames, height, width)
    return tuple(
        (n + 2 * p - k) // s + 1
        for n, k, s, p in zip(dims, cfg.patch_kernel, cfg.patch_stride, cfg.patch_padding, strict=True)
    )


@torch.no_grad()
def attention_rollout(model: MViT, clip: torch.Tensor) -> torch.Tensor:
    """Relevance of each stem token for the final CLS embedding.

    Args:
        model: the MViT video tower.
        clip: (3, T, H, W) normalised clip.

    Returns:
        (T', H', W') relevance on the stem's token grid, scaled to [0, 1].
    """
    out = model(clip[None], return_attention=True)
    specs = block_specs(model.config)
    grid_in = _stem_grid(model, *clip.shape[1:])
    inputs = [grid_in, *out.grids_q[:-1]]
    relevance = torch.zeros(1 + int(np.prod(out.grids_q[-1])))
    relevance[0] = 1.0
    kernel = model.config.pool_kernel
    for i in reversed(range(len(out.attentions))):
        attn = out.attentions[i][0].mean(dim=0).float()  # (1 + Nq, 1 + Nk)
        g_in, g_q, g_kv, spec = inputs[i], out.grids_q[i], out.grids_kv[i], specs[i]
        through = relevance @ attn
        skip_kernel = tuple(s + 1 if s > 1 else 1 for s in spec.stride_q)
        new = torch.empty(1 + int(np.prod(g_in)))
        new[0] = 0.5 * (relevance[0] + through[0])
        new[1:] = 0.5 * _spread(relevance[1:], g_q, g_in, spec.stride_q, skip_kernel)
        new[1:] += 0.5 * _spread(through[1:], g_kv, g_in, spec.stride_kv, kernel)
        relevance = new
    heat = relevance[1:].reshape(grid_in)
    return (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-12)


def _target(out: Any, net: Any) -> torch.Tensor:
    return out.regression[0, 0] if net.regression else out.logits[0].max()


def gradient_maps(model: Model, study: Study) -> torch.Tensor:
    """(N, T, H, W) |input x gradient| of the study's LVEF (or top condition logit), each clip scaled to [0, 1].

    The other clips enter through their cached features, so one clip at a time is differentiated (bounded memory).
    """
    net, device = model.network, model.device
    clips = study.clips.to(device)
    mask = torch.ones(1, len(clips), dtype=torch.bool, device=device)
    with torch.no_grad():
        features = net.encode_clips(clips[None], mask)
    maps = []
    for i in range(len(clips)):
        x = clips[i : i + 1].clone().requires_grad_(True)
        with torch.enable_grad():
            own = net.encoder.features(x)
            feats = torch.cat([features[:, :i], own[:, None], features[:, i + 1 :]], dim=1)
            (grad,) = torch.autograd.grad(_target(net(clip_mask=mask, features=feats), net), x)
        maps.append((grad * x).abs().sum(dim=1)[0].detach())
    sal = torch.stack(maps)
    top = torch.quantile(sal.flatten(1), 0.99, dim=1).clamp_min(1e-12)
    return (sal / top[:, None, None, None]).clamp(0, 1).cpu()


def _resize_map(heat: torch.Tensor, size: Triple) -> np.ndarray:
    """(t, h, w) map -> (T, H, W) by trilinear interpolation, in [0, 1]."""
    up = F.interpolate(heat[None, None].float(), size=size, mode="trilinear", align_corners=False)[0, 0]
    return up.clamp(0, 1).numpy().astype(np.float32)


def _colormap(heat: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8 (black-red-yellow-white ramp)."""
    r = np.clip(heat * 3.0, 0, 1)
    g = np.clip(heat * 3.0 - 1.0, 0, 1)
    b = np.clip(heat * 3.0 - 2.0, 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay_gif(frames: np.ndarray, heat: np.ndarray, alpha: float = 0.5, frame_ms: int = 60) -> bytes:
    """Blend a heat map over grey frames and encode an animated, looping GIF.

    Args:
        frames: (T, h, w) uint8 grey frames.
        heat: (T, h, w) float in [0, 1].
        alpha: opacity of the map where it is 1.
        frame_ms: display time of one frame.
    """
    grey = np.repeat(frames[..., None].astype(np.float32), 3, axis=-1)
    weight = alpha * heat[..., None]
    blended = ((1 - weight) * grey + weight * _colormap(heat).astype(np.float32)).round().astype(np.uint8)
    images = [Image.fromarray(f, mode="RGB").quantize(colors=128, dither=Image.Dither.NONE) for f in blended]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buf.getvalue()


def explain_study(model: Model, study: Study) -> list[ClipExplanation]:
    """Rollout and gradient maps of every clip of a study, with its MIL weight.

    Raises:
        DataError: if the study has no usable clip.
    """
    encoder = model.network.encoder
    with torch.no_grad():
        weights = model._forward(study).attention[0].cpu().numpy()
    grads = gradient_maps(model, study)
    out = []
    for i, ref in enumerate(study.refs):
        size = study.frames[i].shape
        rollout = _resize_map(attention_rollout(encoder, study.clips[i].to(model.device)).cpu(), size)
        gradient = _resize_map(grads[i], size)
        out.append(ClipExplanation(ref.view, ref.slice_index, float(weights[i]), study.frames[i], rollout, gradient))
    return out


def write_explanations(explanations: list[ClipExplanation], out_dir: Path) -> Path:
    """Write each clip's two overlay GIFs and ``explain.json`` (view, slice, MIL weight, files); return the JSON."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for i, clip in enumerate(explanations):
        stem = f"clip{i:02d}_{clip.view}_s{clip.slice_index:02d}"
        rollout, gradient = clip.gifs()
        (out_dir / f"{stem}_rollout.gif").write_bytes(rollout)
        (out_dir / f"{stem}_gradient.gif").write_bytes(gradient)
        index.append(clip.to_dict() | {"rollout": f"{stem}_rollout.gif", "gradient": f"{stem}_gradient.gif"})
    target = out_dir / "explain.json"
    target.write_text(json.dumps({"clips": index}, indent=2), encoding="utf-8")
    logger.info("wrote %d clip explanations to %s", len(index), out_dir)
    return target
