"""One realistic study: a real heart's motion, resampled to a site's grid, warped through a cycle, restyled, written.

See :mod:`cmrclip.synth.realistic` for the method. Label fractions travel with the image through every resampling
and warp (linear interpolation of the one-hot maps), so the volumes are exact for the study as written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from cmrclip.errors import ConfigError
from cmrclip.synth.anatomy import Tissue
from cmrclip.synth.dicom import SeriesSpec, StudySpec, uid, write_series
from cmrclip.synth.hearts import RealHeart
from cmrclip.synth.identity import StudyPlan
from cmrclip.synth.motion import contraction_curve, exp_field, label_channels, register, taper, warp
from cmrclip.synth.randomise import draw_appearance, render_frame
from cmrclip.synth.render import Plane, make_geometry
from cmrclip.synth.reports import ReportFacts, write_report
from cmrclip.synth.study import save_npz

__all__ = [
    "ACDC_TO_TISSUE",
    "GROUP_LVEF",
    "HeartMotion",
    "RealisticStudy",
    "heart_motion",
    "make_real_study",
    "normalised",
    "render_real_study",
]

logger = logging.getLogger(__name__)

GROUP_LVEF: dict[str, tuple[float, float]] = {
    "DCM": (8.0, 40.0),
    "MINF": (10.0, 50.0),
    "HF-I": (10.0, 45.0),
    "HCM": (50.0, 85.0),
    "NOR": (50.0, 78.0),
    "RV": (40.0, 75.0),
    "": (35.0, 78.0),
}
"""Range of the target LVEF (%) drawn for a study of each group (unknown group: ``""``)."""

ACDC_TO_TISSUE = np.array([0, Tissue.RV_BLOOD, Tissue.LV_MYO, Tissue.LV_BLOOD], np.uint8)
"""Mask values written for ACDC labels 0-3 (everything outside the ventricles is 0)."""

S_GRID = np.linspace(0.2, 1.8, 9)
MARGIN_MM = 25.0
MAX_ROTATION_DEG = 25.0


@dataclass(frozen=True)
class HeartMotion:
    """A heart's ED -> ES velocity ``[2, S, h, w]`` on the box ``(rows, cols)`` of its grid, and its EF(s) curve."""

    velocity: np.ndarray
    box: tuple[slice, slice]
    ef_of_scale: np.ndarray


@dataclass(frozen=True)
class RealisticStudy:
    """What was made for one study: its exact measures, conditions, report and file count."""

    measures: dict[str, float]
    conditions: tuple[str, ...]
    report: str
    n_files: int
    subject: str


def _box(heart: RealHeart) -> tuple[slice, slice]:
    rows, cols = np.nonzero(((heart.label_ed > 0) | (heart.label_es > 0)).any(axis=0))
    if rows.size == 0:
        raise ConfigError(f"heart {heart.subject} has empty masks; it cannot be used")
    mr, mc = (round(MARGIN_MM / s) for s in heart.spacing_mm[1:])
    h, w = heart.label_ed.shape[1:]
    return (slice(max(0, rows.min() - mr), min(h, rows.max() + mr + 1)),
            slice(max(0, cols.min() - mc), min(w, cols.max() + mc + 1)))  # fmt: skip


def _structures(heart: RealHeart) -> tuple[tuple[int, ...], ...]:
    """Label structures present at both ED and ES: LV cavity, LV with its wall, RV cavity."""
    myo = (heart.label_ed == 2).any() and (heart.label_es == 2).any()
    return ((3,), *([(2, 3)] if myo else []), *([(1,)] if heart.has_rv else []))


def normalised(image: np.ndarray) -> np.ndarray:
    """Intensities mapped to about ``[0, 1]`` by the 0.5 and 99.5 percentiles."""
    lo, hi = np.percentile(image, (0.5, 99.5))
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1.2).astype(np.float32)


def heart_motion(heart: RealHeart) -> HeartMotion:
    """Register the heart's ED to its ES (in a box around its masks) and tabulate LVEF against contraction scale."""
    box = (slice(None), *_box(heart))
    structures = _structures(heart)
    ed = np.concatenate([label_channels(heart.label_ed[box], structures), normalised(heart.image_ed[box])[None]])
    es = np.concatenate([label_channels(heart.label_es[box], structures), normalised(heart.image_es[box])[None]])
    velocity = taper(register(es, ed))
    lv = (heart.label_ed[box] == 3).astype(np.float32)
    ef = [100 * (1 - warp(lv, exp_field(s * velocity)).sum() / lv.sum()) for s in S_GRID]
    return HeartMotion(velocity, box[1:], np.maximum.accumulate(np.asarray(ef)))


@dataclass(frozen=True)
class _Grid:
    """The site's output grid: source pixel coordinates ``[2, H, W]`` of each output pixel, and its rotation."""

    coords: np.ndarray
    rotation: np.ndarray
    spacing: float


def _grid(heart: RealHeart, rows: int, cols: int, spacing: float, rng: np.random.Generator) -> _Grid:
    theta = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.argwhere(heart.label_ed == 3)[:, 1:].mean(axis=0) + rng.normal(0, 10, 2) / heart.spacing_mm[1:]
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    offset_mm = np.stack([(rr - (rows - 1) / 2) * spacing, (cc - (cols - 1) / 2) * spacing])
    src = np.tensordot(rot, offset_mm, axes=1) / np.asarray(heart.spacing_mm[1:])[:, None, None]
    return _Grid(src + centre[:, None, None], rot, spacing)


def _resample(volume: np.ndarray, grid: _Grid, fill: float = 0.0) -> np.ndarray:
    """Sample every slice of ``volume`` ``[S, h, w]`` at the grid (bilinear)."""
    return np.stack([ndimage.map_coordinates(s, grid.coords, order=1, mode="constant", cval=fill) for s in volume])


def _velocity_on_grid(heart: RealHeart, motion: HeartMotion, grid: _Grid) -> np.ndarray:
    """The heart's velocity (source pixels) as output-grid pixels, in the output grid's axes."""
    full = np.zeros((2, *heart.label_ed.shape), np.float32)
    full[(slice(None), slice(None), *motion.box)] = motion.velocity
    mm = np.stack([_resample(full[i], grid) * heart.spacing_mm[1 + i] for i in range(2)])
    return (np.tensordot(grid.rotation.T, mm, axes=1) / grid.spacing).astype(np.float32)


def _target_scale(heart: RealHeart, motion: HeartMotion, rng: np.random.Generator) -> float:
    lo, hi = GROUP_LVEF.get(heart.group or "", GROUP_LVEF[""])
    target = rng.uniform(lo, hi)
    return float(np.interp(target, motion.ef_of_scale, S_GRID))


def _hard(fractions: np.ndarray) -> np.ndarray:
    """ACDC labels from soft fractions ``[4, ...]``.

    A cavity where its fraction is >= 0.5 (which keeps cavity volumes close to the fractions' sums), else the larger
    of background and myocardium.
    """
    labels = np.where(fractions[2] > fractions[0], 2, 0).astype(np.uint8)
    labels[fractions[1] >= 0.5] = 1
    labels[fractions[3] >= 0.5] = 3
    return labels


def _cycle(heart: RealHeart, motion: HeartMotion, plan: StudyPlan, scale: float, rng: np.random.Generator) -> tuple:
    """Images ``[S, F, H, W]`` in ``[0, 1]``, ACDC labels ``[S, F, H, W]``, volumes per frame ``[F, 4]`` (voxels)."""
    site = plan.site
    spacing = site.fov_mm / max(site.rows, site.cols) * rng.uniform(0.9, 1.1)
    grid = _grid(heart, site.rows, site.cols, spacing, rng)
    image = _resample(normalised(heart.image_ed), grid)
    onehot = np.stack([_resample((heart.label_ed == k).astype(np.float32), grid, float(k == 0)) for k in range(4)])
    velocity = _velocity_on_grid(heart, motion, grid)
    moving = np.abs(velocity).max(axis=(0, 1)) > 1e-3
    r, c = np.nonzero(moving) if moving.any() else (np.array([0]), np.array([0]))
    box = (slice(None), slice(r.min(), r.max() + 1), slice(c.min(), c.max() + 1))
    n_frames = int(rng.integers(site.phases[0], site.phases[1] + 1))
    curve = contraction_curve(n_frames, float(rng.uniform(0.3, 0.4))) * scale
    app = draw_appearance(rng, image.shape[1:])
    frames = np.empty((image.shape[0], n_frames, *image.shape[1:]), np.float32)
    labels = np.repeat(_hard(onehot)[:, None], n_frames, axis=1)
    still = onehot.sum(axis=(1, 2, 3)) - onehot[(slice(None), *box)].sum(axis=(1, 2, 3))
    volumes = np.empty((n_frames, 4))
    for f, a in enumerate(curve):
        img, frac = image.copy(), onehot.copy()
        if a > 0:
            disp = exp_field(a * velocity[(slice(None), *box)], steps=3)
            img[box] = warp(image[box], disp)
            frac[(slice(None), *box)] = warp(onehot[(slice(None), *box)], disp)
            labels[(box[0], f, *box[1:])] = _hard(frac[(slice(None), *box)])
        volumes[f] = still + frac[(slice(None), *box)].sum(axis=(1, 2, 3))
        frames[:, f] = render_frame(img, frac, app, rng)
    return frames, labels, volumes, spacing


def _measures(volumes: np.ndarray, voxel_ml: float) -> dict[str, float]:
    lv, rv = volumes[:, 3] * voxel_ml, volumes[:, 1] * voxel_ml
    k = int(np.argmin(lv))
    return {
        "lvedv_ml": float(lv[0]),
        "lvesv_ml": float(lv[k]),
        "lv_mass_g": float(volumes[0, 2] * voxel_ml * 1.05),
        "rvedv_ml": float(rv[0]),
        "rvesv_ml": float(rv[k]),
        "lvef": float(100 * (lv[0] - lv[k]) / lv[0]),
        "rvef": float(100 * (rv[0] - rv[k]) / rv[0]),
    }


def render_real_study(
    plan: StudyPlan, heart: RealHeart, motion: HeartMotion
) -> tuple[np.ndarray, np.ndarray, list[Plane], dict[str, float]]:
    """Images uint16 ``[S, F, H, W]``, masks ``[S, F, H, W]`` (Tissue values), SAX planes and exact measures."""
    rng = np.random.default_rng(list(plan.seed))
    scale = _target_scale(heart, motion, np.random.default_rng(list(plan.heart_seed)))  # a rescan keeps its EF
    frames, acdc, volumes, spacing = _cycle(heart, motion, plan, scale, rng)
    dz = heart.spacing_mm[0]
    measures = _measures(volumes, spacing * spacing * dz / 1000.0)
    labels = ACDC_TO_TISSUE[acdc]
    pixels = np.rint(frames * plan.site.max_value * rng.uniform(0.6, 0.95)).astype(np.uint16)
    geo = make_geometry(rng)
    row_dir, col_dir, normal = geo.axes[:, 0], geo.axes[:, 1], geo.axes[:, 2]
    rows, cols = frames.shape[2:]
    planes = []
    for k in range(frames.shape[0]):
        centre = geo.origin - normal * (k - (frames.shape[0] - 1) / 2) * dz
        position = centre - row_dir * spacing * (cols - 1) / 2 - col_dir * spacing * (rows - 1) / 2
        planes.append(Plane(position, row_dir, col_dir, rows, cols, spacing, dz * float(rng.uniform(0.7, 1.0))))
    return pixels, labels, planes, measures


def _series(plan: StudyPlan, planes: list[Plane], n_frames: int, rng: np.random.Generator) -> list[SeriesSpec]:
    number = int(rng.integers(2, 8))
    site = plan.site
    if site.sax_one_series:
        return [SeriesSpec(site.sax_description, number, planes, n_frames)]
    return [SeriesSpec(site.sax_description.format(n=i + 1), number + i, [p], n_frames) for i, p in enumerate(planes)]


def make_real_study(
    plan: StudyPlan, heart: RealHeart, motion: HeartMotion, out_dir: Path, masks: bool = False
) -> RealisticStudy:
    """Render and write one realistic study under ``out_dir`` (SAX DICOM, optional masks); return its truth."""
    pixels, labels, planes, measures = render_real_study(plan, heart, motion)
    rng = np.random.default_rng([*plan.seed, 7])
    study = StudySpec(plan.accession, plan.study_uid, uid(plan.study_uid, "frame"), plan.date, plan.time, plan.age,
                      float(rng.uniform(750, 1100)))  # fmt: skip
    root = Path(out_dir) / "dicom" / plan.patient.patient_id / plan.accession
    n_files = 0
    for spec in _series(plan, planes, pixels.shape[1], rng):
        name = f"S{spec.number:04d}" if plan.site.file_naming == "uid" else f"{spec.number:03d}_{spec.description}"
        slices = [pixels[next(i for i, q in enumerate(planes) if q is p)] for p in spec.planes]
        n_files += write_series(root / name.replace(" ", "_"), slices, plan.site, plan.patient, study, spec)
    if masks:
        positions = np.stack([p.position for p in planes])
        save_npz(Path(out_dir) / "masks" / f"{plan.accession}.npz", {
            "labels": labels, "positions_mm": positions, "orientation": np.concatenate([planes[0].row_dir,
            planes[0].col_dir]), "pixel_spacing_mm": np.array([planes[0].spacing] * 2),
            "slice_spacing_mm": np.array(float(np.linalg.norm(positions[1] - positions[0])) if len(planes) > 1
                                         else heart.spacing_mm[0]),
            "legend": np.array(json.dumps({t.name: int(t) for t in Tissue})), "source_subject": np.array(heart.subject),
        })  # fmt: skip
    conditions = heart.conditions
    facts = ReportFacts(
        site=plan.site.key, institution=plan.site.institution, field_strength=plan.site.field_strength,
        manufacturer=plan.site.manufacturer, patient_name=plan.patient.name, patient_id=plan.patient.patient_id,
        birth_date=plan.patient.birth_date, study_date=plan.date, accession=plan.accession, age=plan.age,
        sex=plan.patient.sex, positives=conditions, measures=measures, follow_up=plan.kind == "follow-up",
    )  # fmt: skip
    text, _ = write_report(facts, rng)
    return RealisticStudy(measures, conditions, text, n_files, heart.subject)
