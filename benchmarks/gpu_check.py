"""GPU check: train MViT-B 16x224 + a small BERT with the CLIP loss in fp32 and bf16 autocast; print clips/s, memory.

Run: ``python benchmarks/gpu_check.py`` (a few minutes on one GPU). On a machine without CUDA it prints a message
and exits 0. ``--device cpu --preset tiny --batch 4 --steps 2`` smoke-tests the same code path on a CPU.
Also checks that the GPU forward (fp32, TF32 off) matches the CPU forward of the same weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import torch

from cmrclip.models.clip import ClipModel
from cmrclip.models.loss import ClipLoss
from cmrclip.models.registry import build_video_encoder, seeded_init
from cmrclip.models.text import TextConfig, TextEncoder

TEXT = TextConfig(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024, proj_dim=512)


def _model(preset: str, device: torch.device) -> ClipModel:
    video = build_video_encoder(preset, seed=0)
    text = seeded_init(lambda: TextEncoder(TEXT.model_copy(update={"proj_dim": video.config.proj_dim})), 0)
    return ClipModel(video, text, embed_dim=video.config.proj_dim).to(device)


def _batch(model: ClipModel, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    clips = torch.randn(batch, 3, *model.video.config.input_size, generator=gen)
    ids = torch.randint(5, TEXT.vocab_size, (batch, 128), generator=gen)
    return clips.to(device), ids.to(device), torch.ones_like(ids).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_speed(preset: str, device: torch.device, batch: int, steps: int, warmup: int, bf16: bool) -> dict:
    """Time ``steps`` optimiser steps after ``warmup``; return clips/s, peak memory and the losses."""
    model = _model(preset, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    loss_fn = ClipLoss()
    clips, ids, mask = _batch(model, batch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, start = [], 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(clips, ids, mask)
            loss = loss_fn(out.video.float(), out.text.float(), out.logit_scale.float()).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.clamp_logit_scale_()
        losses.append(round(float(loss.detach()), 4))
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {
        "precision": "bf16-autocast" if bf16 else "fp32",
        "clips_per_s": round(batch * steps / seconds, 2),
        "s_per_step": round(seconds / steps, 4),
        "peak_mem_gib": round(peak, 2),
        "losses": losses,
    }


def cpu_parity(preset: str, device: torch.device) -> float:
    """Max |embedding difference| between this device (fp32, TF32 off) and the CPU, same weights and clip."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    video = build_video_encoder(preset, seed=0).eval()
    clip = torch.randn(1, 3, *video.config.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = video(clip)
        got = video.to(device)(clip.to(device)).cpu()
    return float((got - ref).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mvit_b_16x4")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to measure (use --device cpu for a smoke test)")
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"gpu_check: {args.preset} on {name}, torch {torch.__version__}, batch {args.batch}, {args.steps} steps")
    results = {"device": name, "preset": args.preset, "batch": args.batch, "runs": []}
    results["cpu_parity_max_abs"] = cpu_parity(args.preset, device)
    print(f"  forward vs CPU (fp32, TF32 off): max |diff| on the embedding = {results['cpu_parity_max_abs']:.2e}")
    for bf16 in (False, True):
        if bf16 and device.type == "cpu":
            continue
        try:
            run = train_speed(args.preset, device, args.batch, args.steps, args.warmup, bf16)
        except torch.OutOfMemoryError:
            print(f"  {'bf16' if bf16 else 'fp32'}: out of memory at batch {args.batch}; rerun with a smaller --batch")
            torch.cuda.empty_cache()
            continue
        results["runs"].append(run)
        print(
            f"  {run['precision']:>13}: {run['clips_per_s']:8.2f} clips/s, {run['s_per_step']:.3f} s/step, "
            f"peak {run['peak_mem_gib']:.2f} GiB, loss {run['losses'][0]} -> {run['losses'][-1]}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
