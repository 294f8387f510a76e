"""Render, write and describe one study: DICOM series for every view, optional SAX masks, report, measurements."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmrclip.synth.anatomy import HeartParams, Tissue, heart_state
from cmrclip.synth.dicom import SeriesSpec, StudySpec, uid, write_series
from cmrclip.synth.identity import StudyPlan
from cmrclip.synth.measure import measure_heart
from cmrclip.synth.phenotypes import heart_params
from cmrclip.synth.render import Plane, make_geometry, plan_views, render_image, render_labels
from cmrclip.synth.reports import ReportFacts, write_report

__all__ = ["StudyResult", "make_study", "render_study", "save_npz"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyResult:
    """What was made for one study."""

    measures: dict[str, float]
    report: str
    negated: tuple[str, ...]
    n_files: int
    params: HeartParams


@dataclass(frozen=True)
class RenderedView:
    """One view's planes, anatomical labels [S][F, H, W] and images [S][F, H, W]."""

    planes: list[Plane]
    labels: list[np.ndarray]
    images: list[np.ndarray]


def render_study(plan: StudyPlan) -> tuple[HeartParams, int, dict[str, RenderedView]]:
    """Draw the heart for ``plan`` and render its four views (no files written)."""
    rng = np.random.default_rng(list(plan.seed))
    params, _ = heart_params(list(plan.conditions), np.random.default_rng(list(plan.heart_seed)), plan.patient.sex)
    n_phases = int(rng.integers(plan.site.phases[0], plan.site.phases[1] + 1))
    st = heart_state(params, n_phases)
    geo = make_geometry(rng)
    views = {}
    for view, planes in plan_views(params, st, geo, plan.site).items():
        labels = [render_labels(params, st, geo, pl) for pl in planes]
        images = [
            render_image(lab, pl, params, st, geo, plan.site, rng) for lab, pl in zip(labels, planes, strict=True)
        ]
        views[view] = RenderedView(planes, labels, images)
    return params, n_phases, views


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` with fixed zip timestamps, so the same arrays give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _mask_arrays(sax: RenderedView) -> dict[str, np.ndarray]:
    first = sax.planes[0]
    positions = np.stack([p.position for p in sax.planes])
    legend = json.dumps({t.name: int(t) for t in Tissue})
    return {
        "labels": np.stack(sax.labels).astype(np.uint8),
        "positions_mm": positions,
        "orientation": np.concatenate([first.row_dir, first.col_dir]),
        "pixel_spacing_mm": np.array([first.spacing, first.spacing]),
        "slice_spacing_mm": np.array(float(np.linalg.norm(positions[1] - positions[0]))),
        "legend": np.array(legend),
    }


def _series_specs(
    plan: StudyPlan, views: dict[str, RenderedView], n_phases: int, rng: np.random.Generator
) -> list[SeriesSpec]:
    site = plan.site
    order = [str(v) for v in rng.permutation(["SAX", "4CH", "2CH", "3CH"])]
    number = int(rng.integers(2, 8))
    specs = []
    for view in order:
        planes = views[view].planes
        if view != "SAX":
            specs.append(SeriesSpec(site.lax(view), number, planes, n_phases))
            number += 1
        elif site.sax_one_series:
            specs.append(SeriesSpec(site.sax_description, number, planes, n_phases))
            number += 1
        else:
            for i, plane in enumerate(planes):
                specs.append(SeriesSpec(site.sax_description.format(n=i + 1), number, [plane], n_phases))
                number += 1
    return specs


def _pixels(views: dict[str, RenderedView], spec: SeriesSpec) -> list[np.ndarray]:
    for view in views.values():
        ids = [id(p) for p in view.planes]
        if id(spec.planes[0]) in ids:
            return [view.images[ids.index(id(p))] for p in spec.planes]
    raise KeyError(spec.description)


def make_study(plan: StudyPlan, out_dir: Path, masks: bool = False) -> StudyResult:
    """Render and write one study under ``out_dir`` (DICOM, optional masks); return its truth and report."""
    params, n_phases, views = render_study(plan)
    rng = np.random.default_rng([*plan.seed, 7])
    measures = measure_heart(params, n_phases)
    measures |= {"max_wall_mm": params.wall + params.septal_extra, "aortic_root_mm": 2.4 * params.ao_radius}
    study = StudySpec(plan.accession, plan.study_uid, uid(plan.study_uid, "frame"), plan.date, plan.time, plan.age,
                      float(rng.uniform(750, 1100)))  # fmt: skip
    root = Path(out_dir) / "dicom" / plan.patient.patient_id / plan.accession
    n_files = 0
    for spec in _series_specs(plan, views, n_phases, rng):
        name = f"S{spec.number:04d}" if plan.site.file_naming == "uid" else f"{spec.number:03d}_{spec.description}"
        folder = root / name.replace(" ", "_")
        n_files += write_series(folder, _pixels(views, spec), plan.site, plan.patient, study, spec)
    if masks:
        save_npz(Path(out_dir) / "masks" / f"{plan.accession}.npz", _mask_arrays(views["SAX"]))
    facts = ReportFacts(
        site=plan.site.key, institution=plan.site.institution, field_strength=plan.site.field_strength,
        manufacturer=plan.site.manufacturer, patient_name=plan.patient.name, patient_id=plan.patient.patient_id,
        birth_date=plan.patient.birth_date, study_date=plan.date, accession=plan.accession, age=plan.age,
        sex=plan.patient.sex, positives=plan.conditions, measures=measures, follow_up=plan.kind == "follow-up",
    )  # fmt: skip
    text, negated = write_report(facts, rng)
    return StudyResult(measures, text, tuple(negated), n_files, params)
