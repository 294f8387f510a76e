"""What ``cmrclip segment`` writes: NIfTI masks, overlay GIFs, volumes.json, and derived volumes as store labels.

Masks are written in the study's geometry (the stored SAX grid); derived labels never overwrite report values.
"""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image

from cmrclip.ingest.manifest import NUMERIC_TARGETS
from cmrclip.ingest.store import StudyStore
from cmrclip.segment.infer import SaxStack, SegmentationResult
from cmrclip.segment.volumes import LABELS

__all__ = ["DERIVED_FLAG", "derived_labels", "mask_affine", "overlay_gif", "write_outputs", "write_store_labels"]

logger = logging.getLogger(__name__)

DERIVED_FLAG = "volumes_derived"
"""Manifest column set to 1.0 where the volume targets were written from segmentation (not from a report)."""

_COLOURS = np.array([[0, 0, 0], [230, 60, 60], [60, 200, 80], [70, 120, 240]], dtype=np.float32)
_ALPHA = 0.45
_TARGETS = {"lvef": "lvef", "lvedv_ml": "edv_ml", "lvesv_ml": "esv_ml", "lv_mass_g": "lv_mass_g", "rvef": "rvef"}


def mask_affine(stack: SaxStack) -> np.ndarray:
    """The NIfTI (RAS) affine of ``[W, H, S]`` voxels: the inverse of how ``cmrclip ingest`` reads NIfTI.

    Voxel ``(i, j, k)`` is column ``i``, row ``j`` of slice ``k``; without orientation or positions an axis-aligned
    grid with the known spacing is used.
    """
    row_sp, col_sp = stack.pixel_spacing_mm or (1.0, 1.0)
    orient = np.asarray(stack.orientation if stack.orientation else (1, 0, 0, 0, 1, 0), dtype=np.float64)
    row_dir, col_dir = orient[:3], orient[3:]
    normal = np.cross(row_dir, col_dir)
    pos = stack.positions_mm
    step = normal * (stack.slice_spacing_mm or 1.0)
    if pos is not None and len(pos) > 1:
        step = (np.asarray(pos[-1]) - np.asarray(pos[0])) / (len(pos) - 1)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row_dir * col_sp, col_dir * row_sp, step
    lps[:3, 3] = np.asarray(pos[0]) if pos is not None else 0.0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def overlay_gif(pixels: np.ndarray, masks: np.ndarray, max_px: int | None = None) -> bytes:
    """One slice ``[F, H, W]`` as a looping GIF with the labels in colour (long side at most ``max_px``)."""
    grey = pixels.astype(np.float32)
    lo, hi = np.percentile(grey, (1, 99))
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1)[..., None] * 255
    colour = _COLOURS[masks]
    alpha = np.where(masks[..., None] > 0, _ALPHA, 0.0)
    rgb = (grey * (1 - alpha) + colour * alpha).astype(np.uint8)
    frames = [Image.fromarray(f) for f in rgb]
    scale = 1.0 if max_px is None else min(1.0, max_px / max(masks.shape[1:]))
    if scale < 1.0:
        size = (max(1, round(masks.shape[2] * scale)), max(1, round(masks.shape[1] * scale)))
        frames = [f.resize(size, Image.Resampling.NEAREST) for f in frames]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


def write_outputs(result: SegmentationResult, out_dir: Path, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``masks.nii.gz`` (uint8 ``[W, H, S, F]``), ``overlay_slice_NN.gif`` and ``volumes.json``.

    Returns:
        The paths written, by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    masks = result.masks
    image = nib.Nifti1Image(np.ascontiguousarray(masks.transpose(3, 2, 0, 1)), mask_affine(result.stack))
    image.header.set_xyzt_units("mm")
    nifti = out_dir / "masks.nii.gz"
    nib.save(image, nifti)
    gifs = []
    for s in range(masks.shape[0]):
        gifs.append(out_dir / f"overlay_slice_{s:02d}.gif")
        gifs[-1].write_bytes(overlay_gif(result.stack.pixels[s], masks[s]))
    body = {**(meta or {}), "labels": LABELS, "volumes": result.volumes.to_dict(), "warnings": result.warnings}
    body["shape_slices_frames_rows_cols"] = list(masks.shape)
    volumes = out_dir / "volumes.json"
    volumes.write_text(json.dumps(body, indent=1), encoding="utf-8")
    return {"masks": nifti, "volumes": volumes, "gifs": gifs[0].parent}


def derived_labels(store: StudyStore, results: dict[str, SegmentationResult]) -> pd.DataFrame:
    """Label rows for studies whose manifest has no LVEF: the segmented volumes, flagged in ``volumes_derived``.

    Targets a study already has (from its report) are never overwritten; studies with a report LVEF are left out.
    """
    manifest = store.manifest().set_index("study_key")
    rows = []
    for key, result in results.items():
        if key not in manifest.index or pd.notna(manifest.at[key, "lvef"]) or result.volumes.lvef is None:
            continue
        row: dict[str, Any] = {"study_key": key, DERIVED_FLAG: 1.0}
        for column, attr in _TARGETS.items():
            have = manifest.at[key, column] if column in manifest.columns else math.nan
            value = getattr(result.volumes, attr)
            row[column] = have if pd.notna(have) else (value if value is not None else math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["study_key", *NUMERIC_TARGETS, DERIVED_FLAG])


def write_store_labels(store: StudyStore, results: dict[str, SegmentationResult]) -> int:
    """Write :func:`derived_labels` into the store's manifest; return how many studies got labels."""
    table = derived_labels(store, results)
    if not table.empty:
        store.add_labels(table, allow_new_columns=True)
    logger.info("wrote segmentation-derived volumes for %d studies", len(table))
    return len(table)
