"""Pretraining benchmark: synthetic cohort -> store -> default CPU pretraining, paired vs. shuffled reports.

Usage (from the repository root; the cohort and store are reused when present):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_pretrain.py --work runs/bench_pretrain --studies 256

Prints the loader throughput, wall time and the last epoch's held-out retrieval recall of each run, plus chance.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from _store import make_store

from cmrclip.config import load_config
from cmrclip.data.loader import make_loader, measure_throughput
from cmrclip.train.distributed import ResumableSampler
from cmrclip.train.pretrain import PretrainConfig, build_clip_model, build_datasets, pretrain


def loader_speed(cfg: PretrainConfig) -> None:
    clip = build_clip_model(cfg.model, cfg.seed)
    train_ds, _ = build_datasets(cfg, clip)
    for workers in (0, 1):
        sampler = ResumableSampler(len(train_ds), seed=cfg.seed)
        loader = make_loader(train_ds, cfg.train.batch_size, sampler, num_workers=workers)
        stats = measure_throughput(loader, max_batches=4)
        rate = f"{stats.clips} clips in {stats.seconds:.1f} s = {stats.clips_per_s:.1f} clips/s"
        print(f"loader ({workers} workers): {rate}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("runs/bench_pretrain"))
    parser.add_argument("--studies", type=int, default=256)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    parser.add_argument("--only", choices=["paired", "shuffled"], default=None)
    parser.add_argument("--skip-loader", action="store_true", help="do not time the loader")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = make_store(args.work, args.studies, matrix=64, workers=2)
    base = [f"store_root={store.resolve()}", *args.set]
    if not args.skip_loader:
        loader_speed(load_config(PretrainConfig, None, base, defaults="pretrain.yaml"))
    for name in ("paired", "shuffled"):
        if args.only and name != args.only:
            continue
        extra = ["data.shuffle_reports=true"] if name == "shuffled" else []
        cfg = load_config(PretrainConfig, None, base + extra, defaults="pretrain.yaml")
        t = time.perf_counter()
        result = pretrain(cfg, args.work / name)
        wall = time.perf_counter() - t
        m = result.metrics
        chance = {k: k_ / m["n_candidates"] for k, k_ in (("r@1", 1), ("r@5", 5), ("r@10", 10))}
        print(json.dumps({"run": name, "steps": result.steps, "wall_s": round(wall, 1),
                          "train_clips_per_s": round(result.clips_per_s, 1), "chance": chance,
                          **{k: v for k, v in m.items() if k != "seconds"}}))  # fmt: skip


if __name__ == "__main__":
    main()
