"""ED/ES cycle: does the interpolated ED->ES->ED cycle bias LVEF? Measured on the real ACDC ED/ES pack.

For each patient the registration that ingest uses (:func:`cmrclip.ingest.edes.edes_motion`: image intensities only,
no masks, in a 112 px square around the heart) moves the expert ED masks to ES; the LVEF of the moved masks is
compared with the experts' LVEF, and the cavity area along the interpolated cycle is checked to be monotone in
systole. The key frames of a cycle are the acquired ED and ES images, so the only possible bias is in between.

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/edes_cycle.py [--pack PATH] [--limit N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cmrclip.ingest.edes import edes_motion, read_acdc_pack
from cmrclip.synth.motion import contraction_curve, exp_field, warp


def _centred(volume: np.ndarray, centre: tuple[int, int], size: int = 112) -> np.ndarray:
    pad = size // 2
    padded = np.pad(volume, ((0, 0), (pad, pad), (pad, pad)))
    r, c = centre[0] + pad, centre[1] + pad
    return padded[:, r - size // 2 : r + size // 2, c - size // 2 : c + size // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", type=Path, default=Path("../shared/data/acdc_ed_es/acdc_40_patients_ed_es.tar.xz"))
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    subjects = read_acdc_pack(args.pack)
    if args.limit:  # evenly spaced over the sorted patients, so every group is represented
        subjects = [subjects[int(i)] for i in np.linspace(0, len(subjects) - 1, args.limit).round()]
    rows = []
    for s in subjects:
        centre = tuple(int(v) for v in np.argwhere(s.label_ed == 3)[:, 1:].mean(axis=0))
        ed, es = (_centred(v.astype(np.float32), centre) for v in (s.image_ed, s.image_es))
        lv_ed, lv_es = (_centred((v == 3).astype(np.float32), centre) for v in (s.label_ed, s.label_es))
        motion = edes_motion(ed, es)
        curve = contraction_curve(20)
        k_es = int(np.argmax(curve))
        areas = [warp(lv_ed, exp_field(a * motion.forward)).sum() for a in curve[: k_es + 1]]
        true = 100 * (1 - lv_es.sum() / lv_ed.sum())
        moved = 100 * (1 - areas[-1] / areas[0])
        rows.append((s.subject, s.group, true, moved, bool(np.all(np.diff(areas) <= 1e-3 * areas[0]))))
        print(f"{s.subject} {s.group}: LVEF experts {true:.1f}, ED masks moved by the cycle's motion {moved:.1f}")
    err = np.array([r[3] - r[2] for r in rows])
    print(
        f"{len(rows)} patients in {time.perf_counter() - start:.0f} s; moved - experts LVEF: bias {err.mean():+.2f}, "
        f"MAE {np.abs(err).mean():.2f}, max |err| {np.abs(err).max():.2f} points; r = "
        f"{np.corrcoef([r[2] for r in rows], [r[3] for r in rows])[0, 1]:.3f}; monotone systole in "
        f"{sum(r[4] for r in rows)}/{len(rows)}; loadavg {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    )


if __name__ == "__main__":
    main()
