"""The ``cmrclip segment`` and ``cmrclip train-seg`` jobs: many studies in, one folder of outputs per study."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cmrclip.config import save_config
from cmrclip.errors import CmrclipError
from cmrclip.ingest.store import StudyFile, StudyStore
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.segment.infer import SegmentationResult, segment_study
from cmrclip.segment.model import Segmenter, load_segmenter, save_segmenter
from cmrclip.segment.outputs import write_outputs, write_store_labels
from cmrclip.segment.train import TrainSegConfig, train_segmenter, training_stacks

__all__ = [
    "SegmentRun",
    "default_acdc_pack",
    "demo_segmentation",
    "run_train_seg",
    "segment_sources",
    "segment_store",
]

logger = logging.getLogger(__name__)

StudyOpener = Callable[[str], AbstractContextManager[list[Path]]]
"""Turns a user's source (DICOM folder/archive, NIfTI, ``STORE#key``) into store study files (injected by the CLI)."""

_ACDC = Path("acdc_ed_es") / "acdc_40_patients_ed_es.tar.xz"


@dataclass
class SegmentRun:
    """What a segment job did: per study its output folder, or the reason it failed."""

    written: dict[str, Path] = field(default_factory=dict)
    faults: list[dict[str, str]] = field(default_factory=list)
    results: dict[str, SegmentationResult] = field(default_factory=dict)


def _one(segmenter: Segmenter, study: StudyFile, name: str, out_dir: Path, run: SegmentRun, source: str) -> None:
    try:
        result = segment_study(segmenter, study)
    except CmrclipError as exc:
        run.faults.append({"study": name, "stage": "segment", "reason": str(exc)})
        return
    meta = {"source": source, "study_key": str(study.attrs.get("study_key", "")), "model": segmenter.info}
    run.written[name] = write_outputs(result, out_dir / name, meta)["volumes"].parent
    run.results[str(study.attrs.get("study_key", name))] = result


def segment_sources(
    segmenter: Segmenter,
    sources: Iterable[str],
    out_dir: Path,
    opener: StudyOpener,
    progress: ProgressFn = null_progress,
) -> SegmentRun:
    """Segment every study of every source into ``out_dir/<name>/``; a failing study is recorded, not fatal."""
    run, sources = SegmentRun(), list(sources)
    for i, source in enumerate(sources):
        base = Path(source.split("#")[-1]).name.split(".")[0] or "study"
        try:
            with opener(source) as files:
                for j, path in enumerate(files):
                    with StudyFile(path) as study:
                        _one(segmenter, study, base if len(files) == 1 else f"{base}_{j}", out_dir, run, source)
        except CmrclipError as exc:
            run.faults.append({"study": base, "stage": "read", "reason": str(exc)})
        progress("segment", i + 1, len(sources))
    _write_faults(run, out_dir)
    return run


def segment_store(
    segmenter: Segmenter, store: StudyStore, out_dir: Path, write_labels: bool, progress: ProgressFn = null_progress
) -> tuple[SegmentRun, int]:
    """Segment every study of a store that has a SAX view; optionally write derived volumes as its labels.

    Returns:
        The run and the number of studies given derived labels.
    """
    run, keys = SegmentRun(), store.keys()
    for i, key in enumerate(keys):
        with store.open(key) as study:
            _one(segmenter, study, key, out_dir, run, f"{store.root}#{key}")
        progress("segment", i + 1, len(keys))
    _write_faults(run, out_dir)
    return run, (write_store_labels(store, run.results) if write_labels else 0)


def _write_faults(run: SegmentRun, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "faults.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(f) + "\n" for f in run.faults)


def default_acdc_pack() -> Path | None:
    """The shared ACDC pack under ``$CMRCLIP_SHARED_DATA`` or ``../shared/data`` (from the working folder), if any."""
    roots = [Path(os.environ["CMRCLIP_SHARED_DATA"])] if os.environ.get("CMRCLIP_SHARED_DATA") else []
    for root in [*roots, Path("..") / "shared" / "data"]:
        if (root / _ACDC).is_file():
            return (root / _ACDC).resolve()
    return None


def run_train_seg(cfg: TrainSegConfig, progress: ProgressFn = null_progress) -> tuple[Path, str]:
    """Train, then write ``segmenter.pt``, ``losses.json`` and the resolved config into ``cfg.out_dir``.

    Returns:
        The model file and a line saying what it was trained on (real or synthetic masks).
    """
    if cfg.acdc_pack is None and cfg.real_data != "none":
        cfg = cfg.model_copy(update={"acdc_pack": default_acdc_pack()})
    stacks, what = training_stacks(cfg, progress)
    segmenter, losses = train_segmenter(cfg, stacks, progress)
    segmenter.info["trained_on"] = what
    out = Path(cfg.out_dir)
    path = save_segmenter(segmenter, out / "segmenter.pt")
    (out / "losses.json").write_text(json.dumps([round(x, 4) for x in losses]), encoding="utf-8")
    save_config(cfg, out, cfg.seed)
    return path, what


def demo_segmentation(
    out_dir: Path, store_root: Path, steps: int, seed: int, n_studies: int = 4, progress: ProgressFn = null_progress
) -> dict[str, object]:
    """The demo's segmentation stage: a short training (real masks when found), then volumes of a few studies.

    Returns:
        ``text`` (what it trained on, and whether the masks were real) and ``table`` (per study: reference LVEF
        from the store's labels, volumetric LVEF, EDV, ESV, LV mass), for the demo report.
    """
    cfg = TrainSegConfig(out_dir=Path(out_dir), steps=steps, seed=seed, synthetic_studies=8 if steps > 10 else 1)
    path, what = run_train_seg(cfg, progress)
    store = StudyStore(store_root)
    manifest = store.manifest().set_index("study_key")
    segmenter, rows = load_segmenter(path), []
    for key in store.keys()[:n_studies]:
        with store.open(key) as study:
            v = segment_study(segmenter, study).volumes.to_dict()
        reference = manifest.at[key, "lvef"]
        rows.append({"study": key[:8], "lvef_reference": None if pd.isna(reference) else round(float(reference), 1),
                     **{k: v[k] for k in ("lvef", "edv_ml", "esv_ml", "lv_mass_g")}})  # fmt: skip
    real = "REAL expert masks" if what.split()[0] != "0" else "SYNTHETIC masks only (no ACDC pack found)"
    text = f"U-Net trained for {steps} steps on {what} ({real}); model {path}. Volumetric LVEF of the first studies:"
    return {"text": text, "table": rows}
