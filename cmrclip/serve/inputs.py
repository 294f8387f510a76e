"""Turn what a user gives (a DICOM folder or archive, a NIfTI file, a store entry) into the model's clips.

New studies go through the **same** code as ingestion: they are ingested into a temporary study store, then read
back with the store API, so predictions see exactly the pixels a training run would have seen. The clips of a study
are planned and transformed by the model's stored input recipe (:mod:`cmrclip.models.recipe`: the bag of
fine-tuning, :func:`cmrclip.data.bags.plan_bag` at phase offset 0, and its one clip pipeline).
"""

from __future__ import annotations

import logging
import math
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import SecretStr

from cmrclip.config import load_config
from cmrclip.data.bags import ClipRef, frame_indices, plan_bag
from cmrclip.errors import DataError
from cmrclip.ingest.store import StudyFile, StudyStore
from cmrclip.models.recipe import InputRecipe, clip_transform

if TYPE_CHECKING:
    from cmrclip.segment import SegmentationResult

__all__ = ["VIEWS", "Study", "geometry_warnings", "load_study", "open_source", "study_files"]

logger = logging.getLogger(__name__)

VIEWS = ("SAX", "2CH", "3CH", "4CH")
_OVERLAY_SIZE = 128


@dataclass
class Study:
    """One study ready for the model.

    Attributes:
        study_key: the store's hashed key (never a patient identifier).
        clips: (N, 3, T, H, W) float32 model inputs, normalised for the model.
        frames: per clip, (T, h, w) uint8 grey frames of the same clips (at most 128 px) for overlays.
        refs: view and slice of each clip.
        views: the views the study has.
        warnings: human-readable warnings (missing views, unusual geometry).
        segmentation: masks and volumes of the SAX stack, when the model has a segmenter.
    """

    study_key: str
    clips: torch.Tensor
    frames: list[np.ndarray]
    refs: list[ClipRef]
    views: list[str]
    warnings: list[str] = field(default_factory=list)
    segmentation: SegmentationResult | None = None


def geometry_warnings(study: StudyFile) -> list[str]:
    """Warnings about geometry a cine CMR rarely has (spacing, thickness, frames, slices, matrix)."""
    out = []
    for view, meta in study.views.items():
        attrs = study.view_attrs(view)
        spacing = max(meta.pixel_spacing_mm)
        if not 0.5 <= spacing <= 3.0:
            out.append(f"{view}: unusual pixel spacing {spacing:.2f} mm (expected 0.5-3 mm)")
        thickness = float(attrs.get("slice_thickness_mm", math.nan))
        if math.isfinite(thickness) and not 3.0 <= thickness <= 15.0:
            out.append(f"{view}: unusual slice thickness {thickness:.1f} mm (expected 3-15 mm)")
        if not 10 <= meta.n_frames <= 60:
            out.append(f"{view}: {meta.n_frames} frames per cycle (expected 10-60)")
        if min(meta.height, meta.width) < 64:
            out.append(f"{view}: small matrix {meta.height}x{meta.width}")
        if view == "SAX" and not 5 <= meta.n_slices <= 25:
            out.append(f"SAX: {meta.n_slices} slices (a full short-axis stack has 5-25)")
    return out


def _ingest(source: Path, store_root: Path, salt: str | None) -> list[Path]:
    """Ingest the studies of a DICOM folder/archive into a new store (ingestion's own code); return their files."""
    from cmrclip.ingest.pipeline import IngestConfig, ingest

    base = load_config(IngestConfig, defaults="ingest.yaml")
    cfg = base.model_copy(update={"salt": SecretStr(salt or secrets.token_hex(16)), "workers": 1})
    ingest([source], store_root, cfg)
    store = StudyStore(store_root)
    keys = [str(k) for k in store.manifest()["study_key"] if store.study_path(str(k)).is_file()]
    if not keys:
        reasons = sorted({f"{f.get('stage')}: {f.get('reason')}" for f in store.faults()})[:3]
        raise DataError(
            f"no usable cine study found in {source.name}"
            + (f" ({'; '.join(reasons)})" if reasons else "")
            + "; give the DICOM files of a cine CMR study (SAX stack and/or 2CH/3CH/4CH)"
        )
    return [store.study_path(k) for k in sorted(keys)]


@contextmanager
def study_files(source: Path | str, work_dir: Path | None = None, salt: str | None = None) -> Iterator[list[Path]]:
    """The study files of a source; a temporary store used for ingestion is removed on exit.

    Args:
        source: a store entry (``STORE#study_key`` or ``STORE/studies/<key>.h5``), a DICOM folder, a zip/tar of
            DICOM files (possibly several studies).
        work_dir: where temporary files go (a new temporary folder by default; always cleaned up).
        salt: salt of the study keys of newly ingested studies (a random one by default, so keys are not linkable).

    Raises:
        DataError: if the source does not exist or holds no usable cine.
    """
    text = str(source)
    if "#" in text and not Path(text).exists():
        root, _, key = text.rpartition("#")
        yield [StudyStore(Path(root)).study_path(key)]
        return
    path = Path(source)
    if not path.exists():
        raise DataError(f"study {path} does not exist; give a DICOM folder, an archive, a NIfTI file or STORE#key")
    if path.suffix == ".h5":
        yield [path]
        return
    with tempfile.TemporaryDirectory(prefix="cmrclip-predict-", dir=work_dir) as tmp:
        yield _ingest(path, Path(tmp) / "store", salt)


@contextmanager
def open_source(source: Path | str, work_dir: Path | None = None, salt: str | None = None) -> Iterator[StudyFile]:
    """Open the one study of a source (see :func:`study_files`).

    Raises:
        DataError: if the source holds no study or more than one.
    """
    with study_files(source, work_dir, salt) as files:
        if len(files) != 1:
            raise DataError(f"{Path(str(source)).name} holds {len(files)} studies; give one study at a time")
        if not files[0].is_file():
            raise DataError(f"study {source} is not in its store; see the store's manifest for the keys")
        with StudyFile(files[0]) as study:
            yield study


def _overlay_frames(clip: np.ndarray) -> np.ndarray:
    """(T, H, W) float in [0, 1] -> (T, h, w) uint8 with the long side at most 128 px."""
    tensor = torch.from_numpy(clip)[None]
    scale = min(1.0, _OVERLAY_SIZE / max(clip.shape[1:]))
    if scale < 1.0:
        size = (max(1, round(clip.shape[1] * scale)), max(1, round(clip.shape[2] * scale)))
        tensor = torch.nn.functional.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    return (tensor[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def load_study(study: StudyFile, recipe: InputRecipe) -> Study:
    """Read a stored study's clips as the model sees them (its recipe's bag and clip pipeline).

    Args:
        study: an open study file.
        recipe: the model's input recipe (``Bundle.recipe``).

    Raises:
        StoreError: if the study has no usable clip.
    """
    key = str(study.attrs.get("study_key", study.path.stem))
    refs = plan_bag(key, study.views, recipe.bags)
    transform = clip_transform(recipe)
    clips, overlays = [], []
    for ref in refs:
        idx = frame_indices(study.views[ref.view].n_frames, recipe.frames, 0.0)
        clip = study.read_clip(ref.view, ref.slice_index, idx)
        clips.append(transform(clip))
        overlays.append(_overlay_frames(clip))
    views = [v for v in VIEWS if v in study.views]
    warnings = geometry_warnings(study)
    missing = [v for v in VIEWS if v not in study.views]
    if missing:
        warnings.insert(0, f"missing views: {', '.join(missing)} (the prediction uses {', '.join(views)} only)")
    return Study(key, torch.stack(clips).float(), overlays, refs, views, warnings)
