"""Clip transform throughput on CPU: training (augmented) and evaluation pipelines, clips per second.

A stored clip is ``[16, 192, 192]`` float32 in [0, 1] (the store's crop); each pipeline maps it to ``[3, 16, S, S]``.
One thread (a data-loader worker's share of the machine), CPU time of the process, median of ``--repeats`` passes.
With ``--store-work DIR`` it also times the pretraining dataset end to end (store read, temporal jitter, transforms)
on a 24-study synthetic store made once in ``DIR`` (``benchmarks/_store.py``, 96 px, 2 mm).

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_transforms.py --clips 100 --store-work /tmp/tfstore
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _store import make_store

from cmrclip.data.dataset import PretrainDataset, studies_with_reports
from cmrclip.data.transforms import AugmentConfig, RandTemporalJitter, build_clip_transform
from cmrclip.ingest.store import StudyStore


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


def _dataset_items_per_s(work: Path, size: int, repeats: int) -> float:
    store = make_store(work, 24)
    studies = studies_with_reports(StudyStore(store).manifest())
    pipe = build_clip_transform((size, size), AugmentConfig(), lambda x: (x - 0.5) / 0.25)
    ds = PretrainDataset(store, studies, pipe, train=True, temporal_jitter=RandTemporalJitter(1, prob=0.3))
    rates = []
    for epoch in range(repeats):
        ds.set_epoch(epoch)
        start = time.process_time()
        for i in range(len(ds)):
            ds[i]
        rates.append(len(ds) / (time.process_time() - start))
    return statistics.median(rates)


def main() -> None:
    """Print clips/s of the train and eval pipelines at two model sizes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--store-work", type=Path, default=None)
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
    if args.store_work is not None:
        for size in (64, 112):
            rate = _dataset_items_per_s(args.store_work, size, args.repeats)
            print(f"dataset (read + jitter + train transforms) {size}x{size}: {rate:7.1f} items/s")
    print(f"loadavg {before} -> {_loadavg()}")


if __name__ == "__main__":
    main()
