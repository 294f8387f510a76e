"""Benchmark: evaluate 100,000 predictions x 40 labels with DeLong CIs (and optionally a baseline with paired tests).

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_evaluate.py [--n 100000] [--labels 40] [--baseline]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cmrclip.evaluate.delong import delong_ci
from cmrclip.evaluate.evaluation import EvaluateConfig, evaluate_predictions
from cmrclip.evaluate.io import Predictions


def make_table(n: int, labels: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = np.random.default_rng(0)
    data = {"lvef": truth.uniform(15, 75, n)}
    data["lvef_pred"] = data["lvef"] + rng.normal(0, 6, n)
    for j in range(labels):
        y = (truth.random(n) < 0.02 + 0.2 * j / labels).astype(float)
        data[f"target{j:02d}_score"] = 1 / (1 + np.exp(-(rng.normal(size=n) + shift * y - 2)))
        data[f"target{j:02d}"] = y
    return pd.DataFrame(data, index=pd.Index([f"s{i}" for i in range(n)], name="study_key"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=40)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    model = Predictions(make_table(args.n, args.labels, 1.5, 1), source="bench")
    base = Predictions(make_table(args.n, args.labels, 0.7, 2), source="bench") if args.baseline else None

    y = model.table["target00"].to_numpy()
    s = model.table["target00_score"].to_numpy()
    t0 = time.perf_counter()
    delong_ci(y, s)
    one = time.perf_counter() - t0

    t0, c0 = time.perf_counter(), time.process_time()
    table = evaluate_predictions(model, base, EvaluateConfig(n_bootstrap=200))
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    n_auroc = int(((table["metric"] == "auroc") & table["lower"].notna()).sum())
    print(f"one DeLong CI, n={args.n}: {one:.3f} s")
    print(
        f"evaluate_predictions n={args.n} labels={args.labels} baseline={args.baseline}: {total:.2f} s wall, "
        f"{cpu:.2f} s CPU "
        f"({n_auroc} AUROCs with DeLong CIs, {len(table)} rows)"
    )
    print("loadavg:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
