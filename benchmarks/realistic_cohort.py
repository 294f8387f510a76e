"""Realistic cohort: generation speed, LVEF distribution, truth vs the written masks, and a preview picture.

Usage:
  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/realistic_cohort.py --out /tmp/realistic --studies 40 \
      --preview docs/images/realistic_preview.png

The cohort is built from every heart under ``--sources`` (ACDC packs, ACDC cines, M&Ms-2). The preview is rendered
from the two Sunnybrook hearts only (CC0), so the picture in the repository holds no ACDC/M&Ms-derived pixels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cmrclip.conditions import condition_keys
from cmrclip.synth.identity import plan_cohort
from cmrclip.synth.realistic import generate_realistic_cohort, hearts_from_sources, load_real_hearts
from cmrclip.synth.realstudy import heart_motion, render_real_study


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _mask_lvef(path: Path) -> float:
    with np.load(path) as z:
        lv = (z["labels"] == json.loads(str(z["legend"]))["LV_BLOOD"]).sum(axis=(0, 2, 3)).astype(float)
    return 100 * (lv[0] - lv.min()) / lv[0]


def _preview(sources: Path, out_png: Path, seed: int) -> None:
    hearts = load_real_hearts(sunnybrook=[sources / "sunnybrook"])
    plans = plan_cohort(4, seed, ["northfield", "riverside", "lakeshore", "valleyview"], condition_keys())
    rows = []
    for i, plan in enumerate(plans):
        heart = hearts[i % len(hearts)]
        pixels, _, _, measures = render_real_study(plan, heart, heart_motion(heart))
        mid = pixels[len(pixels) // 2].astype(np.float32)
        mid /= max(float(np.percentile(mid, 99.5)), 1.0)
        h, w = mid.shape[1:]
        crop = mid[:, h // 6 : h - h // 6, w // 6 : w - w // 6]
        picks = np.linspace(0, len(crop) - 1, 8).round().astype(int)
        tiles = [Image.fromarray((np.clip(crop[f], 0, 1) * 255).astype(np.uint8)).resize((128, 128)) for f in picks]
        rows.append(np.concatenate([np.asarray(t) for t in tiles], axis=1))
        print(f"preview row {i}: {heart.subject} at {plan.site.key}, LVEF {measures['lvef']:.1f} %")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out_png, optimize=True)
    print(f"wrote {out_png}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--studies", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--matrix", type=int, default=None)
    ap.add_argument("--phases", type=int, default=None)
    ap.add_argument("--preview", type=Path, default=None)
    args = ap.parse_args()
    print(f"loadavg at start {_loadavg()}")
    start = time.perf_counter()
    hearts = hearts_from_sources(args.sources)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    generate_realistic_cohort(args.out, args.studies, args.seed, hearts, masks=True, workers=args.workers,
                              matrix=args.matrix, phases=args.phases)  # fmt: skip
    wall = time.perf_counter() - start
    print(f"{len(hearts)} hearts loaded in {loaded:.1f} s; {args.studies} studies (registration included) in "
          f"{wall:.1f} s = {60 * args.studies / wall:.1f} studies/min with {args.workers} workers; "
          f"loadavg {_loadavg()}")  # fmt: skip
    gt = pd.read_csv(args.out / "ground_truth.csv", dtype={"study_id": str})
    err = np.array([_mask_lvef(args.out / "masks" / f"{s}.npz") for s in gt["study_id"]]) - gt["lvef"].to_numpy()
    q = np.percentile(gt["lvef"], [0, 10, 25, 50, 75, 90, 100])
    print("LVEF % min/p10/p25/median/p75/p90/max: " + " / ".join(f"{v:.1f}" for v in q))
    counts, edges = np.histogram(gt["lvef"], bins=np.arange(0, 101, 10))
    print(
        "LVEF histogram: "
        + ", ".join(f"{int(a)}-{int(b)}: {c}" for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True))
    )
    print(f"LVEF in 10-80 %: {((gt['lvef'] >= 10) & (gt['lvef'] <= 80)).mean():.0%}")
    print(f"truth - written masks LVEF: mean |err| {np.abs(err).mean():.2f}, max {np.abs(err).max():.2f} points")
    print(f"LVEDV mL median {gt['lvedv_ml'].median():.0f} [{gt['lvedv_ml'].min():.0f}, {gt['lvedv_ml'].max():.0f}]; "
          f"RVEF median {gt['rvef'].median():.1f}")  # fmt: skip
    keys = [k for k in gt.columns[8:] if gt[k].sum()]
    print(
        "conditions: "
        + ", ".join(f"{k} {int(gt[k].sum())}" for k in keys)
        + f"; none {(gt.iloc[:, 8:].sum(axis=1) == 0).sum()}"
    )
    if args.preview:
        _preview(args.sources, args.preview, args.seed)


if __name__ == "__main__":
    main()
