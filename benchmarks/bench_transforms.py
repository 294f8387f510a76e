"""Clip transform throughput on CPU: training (augmented) and evaluation pipelines, clips per second.

A stored clip is ``[16, 192, 192]`` float32 in [0, 1] (the store's crop); each pipeline maps it to ``[3, 16, S, S]``.
One thread (a data-loader worker's share of the machine), CPU time of the process, median of ``--repeats`` passes.

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_transforms.py --clips 200
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from cmrclip.data.transforms import AugmentConfig, build_clip_transform


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _clips_per_s(pipe: object, clips: list[np.ndarray], train: bool, repeats: int) -> float:
    rates = []
    for r in range(repeats):
        rng = np.random.default_rng(r)
        start = time.process_time()
        for clip in clips:
            out = pipe.apply(clip, rng) if train else pipe(clip)  # type: ignore[attr-defined]
        rates.append(len(clips) / (time.process_time() - start))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"pipeline returned {type(out).__name__}")
    return statistics.median(rates)


def main() -> None:
    """Print clips/s of the train and eval pipelines at two model sizes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = np.random.default_rng(0)
    clips = [gen.random((16, 192, 192), dtype=np.float32) for _ in range(args.clips)]
    before = _loadavg()
    for size in (64, 112, 224):
        for train in (True, False):
            pipe = build_clip_transform((size, size), AugmentConfig() if train else None, lambda x: (x - 0.5) / 0.25)
            rate = _clips_per_s(pipe, clips, train, args.repeats)
            print(f"{'train' if train else 'eval '} {size}x{size}: {rate:7.1f} clips/s")
    print(f"loadavg {before} -> {_loadavg()}")


if __name__ == "__main__":
    main()
