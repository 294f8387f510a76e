"""Ingestion benchmark: studies/minute, store size per study, and random 16-frame clip reads vs the legacy layout.

    .venv/bin/python benchmarks/bench_ingest.py --synth 6 --workers 2 --out /tmp/bench_ingest

Inputs: the two real Sunnybrook SAX studies (tar.xz) and a synthetic cohort (``cmrclip.synth``, generated first and
not timed). Legacy layout = the original system's float32 gzip ``[3, F, 360, 360]`` per view, written by our
exporter (``cmrclip.ingest.legacy``) from the same studies. Reads are from the page cache (files just written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from cmrclip.ingest.legacy import export_legacy
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.store import StudyStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _ingest(name: str, sources: list[Path], out: Path, workers: int, compression: str) -> dict:
    store = out / f"store_{name}_{compression}"
    shutil.rmtree(store, ignore_errors=True)
    cfg = IngestConfig(salt="bench", workers=workers, compression=compression)
    t0 = time.perf_counter()
    summary = ingest(sources, store, cfg)
    secs = time.perf_counter() - t0
    n = summary.stored + summary.partial
    size = sum(p.stat().st_size for p in (store / "studies").glob("*.h5"))
    return {
        "input": name,
        "compression": compression,
        "studies": n,
        "seconds": round(secs, 2),
        "studies_per_min": round(60 * n / secs, 1),
        "mb_per_study": round(size / n / 1e6, 3),
        "store": str(store),
    }


def _clip_reads(store_dir: Path, reads: int, rng: np.random.Generator) -> list[float]:
    store = StudyStore(store_dir)
    keys = list(store.manifest()["study_key"])
    times = []
    for _ in range(reads):
        with store.open(keys[rng.integers(len(keys))]) as study:
            meta = study.views["SAX"]
            s = int(rng.integers(meta.n_slices))
            frames = np.linspace(0, meta.n_frames, 16, endpoint=False).astype(int)
            t0 = time.perf_counter()
            clip = study.read_clip("SAX", s, frames)
            times.append(time.perf_counter() - t0)
            assert clip.shape[0] == 16
    return times


def _legacy_reads(root: Path, reads: int, rng: np.random.Generator) -> list[float]:
    files = sorted(root.rglob("*.h5"))
    times = []
    for _ in range(reads):
        with h5py.File(files[rng.integers(len(files))], "r") as f:
            ds = f["SAX"]
            ends = [int(e) + 1 for e in ds.attrs["slice_frames"]] + [int(ds.attrs["total_images"])]
            k = int(rng.integers(len(ends)))
            start = 0 if k == 0 else ends[k - 1]
            frames = np.linspace(0, ends[k] - start, 16, endpoint=False).astype(int)
            t0 = time.perf_counter()
            clip = ds[:, start : ends[k]][:, frames]  # one slice's frame range, then 16 of them
            times.append(time.perf_counter() - t0)
            assert clip.shape[1:] == (16, 360, 360)
    return times


def _view_check(n: int, out: Path) -> dict:
    """Geometry-only view identification on ``n`` synthetic studies (headers only), against the descriptions."""
    from cmrclip.ingest.geometry import order_cine
    from cmrclip.ingest.scan import expand_sources, scan_headers
    from cmrclip.ingest.series import _group_series, cine_skip_reason, group_studies
    from cmrclip.ingest.views import SeriesPlane, identify_views, load_view_rules, view_from_description
    from cmrclip.synth import generate_cohort

    cohort = out / f"views{n}"
    if not (cohort / "ground_truth.csv").is_file():
        generate_cohort(cohort, n_studies=n, seed=7, matrix=48, phases=6)
    headers, _ = scan_headers(expand_sources([cohort / "dicom"], out / "work", []))
    rules, correct, described, total = load_view_rules(), 0, 0, 0
    for hs in group_studies(headers).values():
        cines = [s for s in _group_series(hs).values() if cine_skip_reason(s, 4) is None]
        layouts = [order_cine(s)[0] for s in cines]
        truth = [view_from_description(s[0].series_description, rules) for s in cines]
        blind = identify_views([SeriesPlane("", lay.orientation, lay.n_slices) for lay in layouts], rules)
        correct += sum(t == d.view for t, d in zip(truth, blind, strict=True))
        described += sum(t in ("SAX", "2CH", "3CH", "4CH") for t in truth)
        total += len(truth)
    return {"studies": n, "cine_series": total, "described_ok": described, "geometry_only_ok": correct}


def _ms(times: list[float]) -> dict:
    arr = np.array(times) * 1000
    return {"median_ms": round(float(np.median(arr)), 2), "p90_ms": round(float(np.percentile(arr, 90)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench_ingest")
    ap.add_argument("--synth", type=int, default=6, help="synthetic studies (0 = none)")
    ap.add_argument("--matrix", type=int, default=None, help="cap the synthetic matrix size")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reads", type=int, default=100)
    ap.add_argument("--view-check", type=int, default=0, help="only check geometry-only views on N studies")
    ap.add_argument("--skip-legacy", action="store_true", help="do not export/read the legacy layout")
    ap.add_argument("--legacy-reads", type=Path, default=None, help="only time clip reads of an existing legacy dir")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if args.legacy_reads:
        times = _legacy_reads(args.legacy_reads, args.reads, rng)
        print(json.dumps({"legacy_dir": str(args.legacy_reads), **_ms(times)}))
        return
    if args.view_check:
        print(json.dumps(_view_check(args.view_check, args.out)))
        return
    inputs = {"sunnybrook": sorted((SHARED / "sunnybrook" / "dicom_tar_xz").glob("*.tar.xz"))}
    if args.synth:
        from cmrclip.synth import generate_cohort

        cohort = args.out / f"synth{args.synth}"
        if not (cohort / "ground_truth.csv").is_file():
            generate_cohort(cohort, n_studies=args.synth, seed=3, matrix=args.matrix)
        inputs["synthetic"] = [cohort / "dicom"]
    results = []
    for name, sources in inputs.items():
        for compression in ("gzip", "lzf"):
            row = _ingest(name, sources, args.out, args.workers, compression)
            row["clip_read"] = _ms(_clip_reads(Path(row["store"]), args.reads, rng))
            if compression == "gzip" and not args.skip_legacy:
                legacy = args.out / f"legacy_{name}"
                shutil.rmtree(legacy, ignore_errors=True)
                export_legacy(StudyStore(Path(row["store"])), legacy)
                size = sum(p.stat().st_size for p in legacy.rglob("*.h5"))
                row["legacy_mb_per_study"] = round(size / row["studies"] / 1e6, 3)
                row["legacy_clip_read"] = _ms(_legacy_reads(legacy, args.reads, rng))
            results.append(row)
            print(json.dumps(row))
    print("loadavg:", Path("/proc/loadavg").read_text().strip(), "cpus:", os.cpu_count())


if __name__ == "__main__":
    main()
