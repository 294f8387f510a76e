"""Segmentation benchmark: Dice and volumetric LVEF on real hearts, inference time.

By default: K-fold cross-validation by patient on the ACDC pack given by --train (never a test patient's slices in
training; folds: patients sorted by id, patient i in fold i % K). With --test PACK, one model trained on --train is
tested on that pack instead. External sets (--sunnybrook DICOM tar.xz, --mnms2 folder) are segmented by the first
model trained (it never saw them). Training sees only --train (minus the fold) plus synthetic hearts.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/segment.py --out runs/bench_segment \
        --sunnybrook ../shared/data/sunnybrook/dicom_tar_xz/SCD0000101.tar.xz \
        --sunnybrook ../shared/data/sunnybrook/dicom_tar_xz/SCD0000201.tar.xz \
        --sunnybrook-lvef ../shared/data/sunnybrook/labels_derived/summary.json \
        --mnms2 ../shared/data/mnms2_subject001 --folds 5 --only-folds 0

Writes OUT/metrics.json and OUT/predictions.csv (subject, set, fold, lvef_true, lvef_pred, dice_lv, dice_myo,
dice_rv (mean of ED and ES), and the ED/ES Dice separately).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from monai.metrics import compute_dice
from monai.networks.utils import one_hot

from cmrclip.config import load_config
from cmrclip.segment import SaxStack, Segmenter, load_segmenter, save_segmenter, segment_study
from cmrclip.segment.data import LabelledStack, load_acdc_pack, load_mnms2_sax
from cmrclip.segment.train import TrainSegConfig, train_segmenter, training_stacks
from cmrclip.serve.inputs import open_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NAMES = ("lv", "myo", "rv")
logger = logging.getLogger("bench_segment")


def dice_3d(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice per label over a whole stack ``[S, H, W]`` (NaN where both are empty)."""
    p = one_hot(torch.as_tensor(pred[None, None]).long(), 4)
    t = one_hot(torch.as_tensor(truth[None, None]).long(), 4)
    d = compute_dice(p, t, include_background=False, ignore_empty=True)[0]
    return {n: float(v) for n, v in zip(NAMES, d, strict=True)}


def evaluate_stack(seg: Segmenter, stack: LabelledStack) -> dict[str, float | str | None]:
    """Segment a labelled ED/ES stack (frames 0 = ED, 1 = ES) and score it."""
    sax = SaxStack(stack.images, stack.pixel_spacing_mm, None, None, stack.slice_spacing_mm or 10.0)
    result = segment_study(seg, sax, ed_es_frames=(0, 1))
    row: dict[str, float | str | None] = {"subject": stack.subject, "group": stack.group}
    for f, phase in enumerate(("ed", "es")):
        for name, value in dice_3d(result.masks[:, f], stack.labels[:, f]).items():
            row[f"dice_{name}_{phase}"] = value
    for name in NAMES:
        row[f"dice_{name}"] = float(np.nanmean([row[f"dice_{name}_ed"], row[f"dice_{name}_es"]]))
    row["lvef_pred"] = result.volumes.lvef
    row["lvef_true"] = stack.lvef
    return row


def sunnybrook_rows(seg: Segmenter, tars: list[Path], lvef_file: Path | None) -> list[dict]:
    truth = _sunnybrook_truth(lvef_file)
    rows = []
    for tar in tars:
        subject = tar.name.split(".")[0]
        with open_source(tar) as study:
            start = time.monotonic()
            result = segment_study(seg, study)
            seconds = time.monotonic() - start
        v = result.volumes
        rows.append({"subject": subject, "set": "sunnybrook", "lvef_true": truth.get(subject), "lvef_pred": v.lvef,
                     "edv_ml": v.edv_ml, "esv_ml": v.esv_ml, "ed_frame": v.ed_frame, "es_frame": v.es_frame,
                     "seconds": round(seconds, 2), "shape": "x".join(map(str, result.masks.shape))})  # fmt: skip
    return rows


def cine_rows(seg: Segmenter, cine_dir: Path, subjects: list[str]) -> list[dict]:
    """ACDC real cines of held-out patients: ED/ES found from the volume curve vs Info.cfg, LVEF on the cine slices."""
    import nibabel as nib

    with (cine_dir / "cines.csv").open() as fh:
        table = {r["patient"]: r for r in csv.DictReader(fh)}
    rows = []
    for subject in [s for s in subjects if s in table]:
        img = nib.load(str(cine_dir / subject / f"{subject}_4d.nii.gz"))
        pixels = np.transpose(np.asarray(img.dataobj, dtype=np.float32), (2, 3, 1, 0))  # x y z t -> z t y x
        zooms = img.header.get_zooms()
        v = segment_study(
            seg, SaxStack(pixels, (float(zooms[1]), float(zooms[0])), None, None, float(zooms[2]))
        ).volumes
        t = table[subject]
        rows.append({"subject": subject, "set": "acdc_cine", "lvef_true": float(t["LVEF_on_cine_slices_pct"]),
                     "lvef_pred": v.lvef, "ed_true": int(t["ED"]) - 1, "es_true": int(t["ES"]) - 1,
                     "ed_frame": v.ed_frame, "es_frame": v.es_frame, "frames": pixels.shape[1]})  # fmt: skip
    return rows


def _sunnybrook_truth(path: Path | None) -> dict[str, float]:
    if path is None:
        return {}
    if path.suffix == ".json":
        return {c["patient_id"]: float(c["LVEF_pct_polygons"]) for c in json.loads(path.read_text())}
    with path.open() as fh:
        return {r["subject"]: float(r["lvef"]) for r in csv.DictReader(fh)}


def time_study(seg: Segmenter, tar: Path) -> dict[str, float]:
    """Seconds to segment 12 slices x 25 frames at 1.25 mm (a Sunnybrook stack, frames repeated to 25)."""
    with open_source(tar) as study:
        from cmrclip.segment import sax_stack

        stack = sax_stack(study)
    idx = np.arange(25) % stack.pixels.shape[1]
    stack.pixels = stack.pixels[:12, idx]
    start = time.monotonic()
    segment_study(seg, stack)
    return {"seconds": round(time.monotonic() - start, 2), "shape": list(stack.pixels.shape),
            "pixel_spacing_mm": list(stack.pixel_spacing_mm or ()), "threads": torch.get_num_threads()}  # fmt: skip


def _train(args: argparse.Namespace, exclude: list[str]) -> Segmenter:
    overrides = [f"acdc_pack={args.train}", "real_data=required", f"exclude_subjects=[{','.join(exclude)}]"]
    overrides += [f"steps={args.steps}"] if args.steps is not None else []
    overrides += [f"synthetic_studies={args.synthetic}"] if args.synthetic is not None else []
    overrides += args.set
    cfg = load_config(TrainSegConfig, args.config, overrides, defaults="train_seg.yaml")
    stacks, what = training_stacks(cfg)
    start = time.monotonic()
    seg, losses = train_segmenter(cfg, stacks)
    logger.info("trained on %s in %.0f s; loss %.3f -> %.3f", what, time.monotonic() - start, losses[0], losses[-1])
    seg.info.update(trained_on=what, train_seconds=round(time.monotonic() - start, 1), loadavg=_loadavg())
    return seg


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").is_file() else ""


def _cyclic_gap(frame: int, true: int, n_frames: int) -> int:
    """Frames between two phases of a cycle of ``n_frames``, counting across its end."""
    gap = abs(int(frame) - int(true)) % n_frames
    return min(gap, n_frames - gap)


def _summary(rows: list[dict], key_set: str) -> dict[str, float | int]:
    sel = [r for r in rows if r.get("set") == key_set]
    out: dict[str, float | int] = {"n": len(sel)}
    for col in [f"dice_{n}_{p}" for p in ("ed", "es") for n in NAMES]:
        vals = [r[col] for r in sel if r.get(col) is not None and np.isfinite(r[col])]
        if vals:
            out[col] = round(float(np.mean(vals)), 4)
    err = [abs(r["lvef_pred"] - r["lvef_true"]) for r in sel if r.get("lvef_pred") is not None and r.get("lvef_true")]
    if err:
        out["lvef_mae"] = round(float(np.mean(err)), 2)
    return out


def run(args: argparse.Namespace) -> dict:
    train = load_acdc_pack(args.train)
    rows, models, folds = [], [], []
    if args.test:
        test_sets = [(0, load_acdc_pack(args.test), [])]
    else:
        ids = sorted(s.subject for s in train)
        fold_of = {sid: i % args.folds for i, sid in enumerate(ids)}
        wanted = args.only_folds if args.only_folds else list(range(args.folds))
        test_sets = [(k, [s for s in train if fold_of[s.subject] == k], []) for k in wanted]
        test_sets = [(k, test, [s.subject for s in test]) for k, test, _ in test_sets]
    for k, test, exclude in test_sets:
        if args.reuse:  # a model this benchmark trained earlier for the same fold
            seg = load_segmenter(args.reuse / f"segmenter_fold{k}.pt")
        else:
            seg = _train(args, exclude)
            save_segmenter(seg, args.out / f"segmenter_fold{k}.pt")  # local only: ACDC-derived, never committed
        seg.config = seg.config.model_copy(update={"tta_flips": args.tta})
        if args.acdc_cine:
            rows += [{**r, "fold": k} for r in cine_rows(seg, args.acdc_cine, [s.subject for s in test])]
        models.append(seg.info)
        folds.append(k)
        for stack in test:
            rows.append({**evaluate_stack(seg, stack), "set": "acdc", "fold": k})
        if k == test_sets[0][0]:
            rows += sunnybrook_rows(seg, args.sunnybrook, args.sunnybrook_lvef)
            mnms = [load_mnms2_sax(d, lvef=args.mnms2_lvef) for d in args.mnms2]
            rows += [{**evaluate_stack(seg, stack), "set": "mnms2", "fold": k} for stack in mnms]
            timing = time_study(seg, args.sunnybrook[0]) if args.sunnybrook else {}
    metrics = {s: _summary(rows, s) for s in ("acdc", "sunnybrook", "mnms2", "acdc_cine")}
    cine = [r for r in rows if r["set"] == "acdc_cine"]
    for phase in ("ed", "es"):  # frame errors around the cycle: frame F-1 is next to frame 0
        gaps = [_cyclic_gap(r[f"{phase}_frame"], r[f"{phase}_true"], r["frames"]) for r in cine]
        if gaps:
            metrics["acdc_cine"].update({f"{phase}_within_1": sum(g <= 1 for g in gaps),
                                         f"{phase}_frame_error": round(float(np.mean(gaps)), 2)})  # fmt: skip
    metrics.update(folds_run=folds, folds_total=1 if args.test else args.folds, timing=timing, models=models)
    return {"metrics": metrics, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, default=SHARED / "acdc_ed_es" / "acdc_40_patients_ed_es.tar.xz")
    p.add_argument("--test", type=Path, default=None, help="an ACDC-layout pack to test on (default: K-fold CV)")
    p.add_argument("--sunnybrook", type=Path, action="append", default=[], help="Sunnybrook DICOM .tar.xz")
    p.add_argument("--sunnybrook-lvef", type=Path, default=None, help="summary.json or CSV subject,lvef")
    p.add_argument("--mnms2", type=Path, action="append", default=[], help="M&Ms-2 subject folder (NIfTI)")
    p.add_argument("--mnms2-lvef", type=float, default=64.1, help="reference LVEF of the M&Ms-2 subject")
    p.add_argument("--acdc-cine", type=Path, default=None, help="acdc_cine folder: ED/ES detection on real cines")
    p.add_argument("--reuse", type=Path, default=None, help="load OUT/segmenter_fold{k}.pt of an earlier run")
    p.add_argument("--tta", action="store_true", help="average over flips at inference")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-folds", type=int, nargs="*", default=None, help="run only these folds (time)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: train_seg.yaml's)")
    p.add_argument("--synthetic", type=int, default=None, help="synthetic studies (default: train_seg.yaml's)")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--set", action="append", default=[], help="train-seg config override a.b=c")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    start, load0 = time.monotonic(), _loadavg()
    result = run(args)
    result["metrics"].update(wall_seconds=round(time.monotonic() - start), loadavg_start=load0, loadavg_end=_loadavg(),
                             omp=os.environ.get("OMP_WAIT_POLICY"))  # fmt: skip
    (args.out / "metrics.json").write_text(json.dumps(result["metrics"], indent=1, default=str))
    cols = ["subject", "set", "fold", "group", "lvef_true", "lvef_pred", "dice_lv", "dice_myo", "dice_rv"]
    cols += [f"dice_{n}_{p}" for p in ("ed", "es") for n in NAMES] + ["edv_ml", "esv_ml", "ed_frame", "es_frame"]
    cols += ["ed_true", "es_true", "frames", "seconds"]
    with (args.out / "predictions.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result["rows"])
    print(json.dumps({k: v for k, v in result["metrics"].items() if k != "models"}, indent=1, default=str))


if __name__ == "__main__":
    main()
