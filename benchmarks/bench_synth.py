"""Synthetic cohort: wall time of `cmrclip synth` and LV volumes measured from the written SAX masks vs truth.

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_synth.py --out /tmp/synth_bench --studies 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--studies", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    before = _loadavg()
    start = time.perf_counter()
    cmd = [".venv/bin/cmrclip", "synth", "--out", str(args.out), "--studies", str(args.studies)]
    subprocess.run([*cmd, "--seed", str(args.seed), "--masks"], check=True)
    wall = time.perf_counter() - start
    gt = pd.read_csv(args.out / "ground_truth.csv", dtype={"study_id": str})
    rows = []
    for row in gt.itertuples():
        with np.load(args.out / "masks" / f"{row.study_id}.npz") as z:
            legend = json.loads(str(z["legend"]))
            voxel = float(np.prod(z["pixel_spacing_mm"])) * float(z["slice_spacing_mm"]) / 1000
            vol = (z["labels"] == legend["LV_BLOOD"]).sum(axis=(0, 2, 3)) * voxel
        ef = 100 * (1 - vol.min() / vol.max())
        rows.append((vol.max() / row.lvedv_ml - 1, vol.min() / row.lvesv_ml - 1, ef - row.lvef))
    err = np.abs(np.array(rows))
    print(f"wall {wall:.1f} s for {args.studies} studies (with masks); loadavg {before} -> {_loadavg()}")
    print(f"|EDV error| mean {100 * err[:, 0].mean():.2f} % max {100 * err[:, 0].max():.2f} %")
    print(f"|ESV error| mean {100 * err[:, 1].mean():.2f} % max {100 * err[:, 1].max():.2f} %")
    print(f"|LVEF error| mean {err[:, 2].mean():.2f} max {err[:, 2].max():.2f} points")
    positives = gt.iloc[:, 8:].sum()
    print(f"studies with >= 1 condition: {(gt.iloc[:, 8:].sum(axis=1) > 0).sum()} / {len(gt)}; "
          f"conditions present: {int((positives > 0).sum())}; patients: {gt['patient_id'].nunique()}")  # fmt: skip


if __name__ == "__main__":
    main()
