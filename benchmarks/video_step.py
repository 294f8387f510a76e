"""CPU cost of the video presets: one training step (forward + backward + AdamW) per clip, and MViT-B inference.

Run: ``OMP_WAIT_POLICY=PASSIVE python benchmarks/video_step.py [--presets tiny small] [--batch 8] [--steps 5]``.
Prints the median over ``steps`` after one warm-up step, with ``/proc/loadavg`` (the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

from cmrclip.models.loss import ClipLoss
from cmrclip.models.registry import build_video_encoder


def step_seconds(preset: str, batch: int, steps: int) -> float:
    """Median seconds per clip of a CLIP-loss training step of the video tower against fixed text embeddings."""
    model = build_video_encoder(preset).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    clips = torch.randn(batch, 3, *model.config.input_size, generator=gen)
    text = F.normalize(torch.randn(batch, model.config.proj_dim, generator=gen), dim=-1)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = ClipLoss()(model(clips), text, torch.tensor(14.3)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) / batch


def inference_seconds(preset: str, steps: int) -> float:
    """Median seconds of one no-grad forward of a single clip."""
    model = build_video_encoder(preset).eval()
    clip = torch.randn(1, 3, *model.config.input_size)
    times = []
    with torch.no_grad():
        for _ in range(steps + 1):
            start = time.perf_counter()
            model(clip)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, loadavg {Path('/proc/loadavg').read_text()}")
    for preset in args.presets:
        params = sum(p.numel() for p in build_video_encoder(preset).parameters()) / 1e6
        per_clip = step_seconds(preset, args.batch, args.steps)
        print(f"{preset}: {params:.2f} M params, train step {per_clip:.4f} s/clip (batch {args.batch})")
    print(f"mvit_b_16x4: inference {inference_seconds('mvit_b_16x4', 3):.2f} s per 16x224x224 clip (no grad)")
    print(f"loadavg after: {Path('/proc/loadavg').read_text()}")


if __name__ == "__main__":
    main()
