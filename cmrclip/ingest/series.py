"""Group headers into studies and series, keep the cine series, and assemble one cine per view.

A study is identified by its AccessionNumber (the key reports and labels use), else its StudyInstanceUID. A series
is a cine when it has at least ``min_phases`` phases (distinct TriggerTimes at one position, or frames of a
multi-frame file) and is not phase-contrast, a localiser, or a derived map; everything else is skipped with a reason.
Enhanced multi-frame files are first split into one header per frame (:mod:`cmrclip.ingest.enhanced`), so they
form the same stacks as classic series; a series whose transfer syntax cannot be decoded here is skipped with a
fault that names the syntax.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cmrclip.ingest.enhanced import split_frames
from cmrclip.ingest.faults import Fault, loses_data
from cmrclip.ingest.geometry import CineLayout, merge_stacks, order_cine, plane_normal
from cmrclip.ingest.scan import Header, undecodable_reason
from cmrclip.ingest.views import SeriesPlane, ViewDecision, ViewRules, identify_views

__all__ = ["StudyPlan", "ViewCine", "cine_skip_reason", "group_studies", "plan_study", "study_identifier"]

logger = logging.getLogger(__name__)

_NON_CINE_TYPES = {
    "P", "PHASE", "VELOCITY", "FLOW", "LOCALIZER", "T1 MAP", "T2 MAP", "T2* MAP", "MAP", "PHASE MAP", "SCOUT", "PSIR",
}  # fmt: skip
_NAME_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("phase contrast (flow)", re.compile(r"\b(flow|q ?flow|velocity|vel|venc|v\d{2,3}|pc|pc ?mr|phase ?contrast)\b")),
    ("late gadolinium enhancement", re.compile(r"\b(lge|psir|delayed|late ?(gad\w*|enhancement)|de ?mag|ti ?scout)\b")),
    ("a localiser", re.compile(r"\b(localizer|localiser|loc|scout|survey|tri ?pilot|3 ?plane|three ?plane)\b")),
    ("a parametric map", re.compile(r"\b(molli|shmolli|t1 ?map\w*|t2 ?map\w*|t2 ?star|t2s)\b")),
)
"""SeriesDescription hints of non-cine series (matched on lower-case words, see :func:`_words`), in this order."""
_FLOW_SEQUENCE = re.compile(r"(\bv\d{2,4}|venc|flow|\bpc|(\d|fast) ?pc\b)")
"""SequenceName of phase-contrast sequences (e.g. Siemens ``*fl2d1_v150in``, GE ``2DFASTPC``)."""


@dataclass
class ViewCine:
    """The cine chosen for one view, with how its view was decided."""

    view: str
    layout: CineLayout
    decision: ViewDecision
    series_description: str


@dataclass
class StudyPlan:
    """What will be read for one study: a cine per view, plus the faults met while planning."""

    cines: dict[str, ViewCine]
    faults: list[Fault] = field(default_factory=list)
    partial: bool = False


def study_identifier(h: Header) -> str:
    """The identifier a study is grouped and keyed by: AccessionNumber, else StudyInstanceUID, else PatientID."""
    return h.accession.strip() or h.study_uid.strip() or f"patient:{h.patient_id.strip()}"


def group_studies(headers: Sequence[Header]) -> dict[str, list[Header]]:
    """Group headers by study identifier (sorted keys; headers in file-name order)."""
    out: dict[str, list[Header]] = defaultdict(list)
    for h in sorted(headers, key=lambda h: h.ref.name):
        out[study_identifier(h)].append(h)
    return dict(sorted(out.items()))


def _group_series(headers: Sequence[Header]) -> dict[str, list[Header]]:
    out: dict[str, list[Header]] = defaultdict(list)
    for h in headers:
        out[h.series_uid or f"{h.series_number}:{h.series_description}"].append(h)
    return dict(sorted(out.items(), key=lambda kv: (kv[1][0].series_number, kv[0])))


def _words(text: str) -> str:
    """Lower-case ``text`` with every non-alphanumeric character turned into a space (as views.yaml does)."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _acquisition_skip_reason(first: Header) -> str | None:
    """Why a series' acquisition is not a bSSFP-like cine, from ImageType, ScanningSequence and names."""
    bad = _NON_CINE_TYPES.intersection(first.image_type)
    if bad:
        return f"ImageType {'/'.join(sorted(bad))}: not a cine"
    scanning = set(first.scanning_sequence)
    if "IR" in scanning:
        return f"ScanningSequence {'/'.join(first.scanning_sequence)} (inversion recovery, e.g. LGE): not a cine"
    if scanning and "GR" not in scanning:
        return f"ScanningSequence {'/'.join(first.scanning_sequence)}: not a gradient-echo (bSSFP-like) cine"
    description, sequence = _words(first.series_description), _words(first.sequence_name)
    for what, pattern in _NAME_HINTS:
        if pattern.search(description):
            return f"SeriesDescription {first.series_description!r} suggests {what}: not a cine"
    if _FLOW_SEQUENCE.search(sequence):
        return f"SequenceName {first.sequence_name!r} suggests phase contrast (flow): not a cine"
    return None


def cine_skip_reason(headers: Sequence[Header], min_phases: int) -> str | None:
    """Why a series is not a cine (None when it is one).

    A cine is MR, bSSFP-like (gradient echo without inversion recovery when ScanningSequence is given; not phase
    contrast, LGE, a localiser or a map by ImageType, SeriesDescription or SequenceName) and has at least
    ``min_phases`` phases at one position (distinct TriggerTimes, or frames of a multi-frame file).
    """
    first = headers[0]
    if first.modality and first.modality != "MR":
        return f"modality {first.modality}, not MR"
    reason = _acquisition_skip_reason(first)
    if reason is not None:
        return reason
    multi = max(h.n_frames for h in headers)
    if multi > 1:
        return None if multi >= min_phases else f"{multi} frames < {min_phases}"
    times: dict[tuple, set[float]] = defaultdict(set)
    for h in headers:
        key = tuple(np.round(h.position, 1)) if h.position else ()
        if h.trigger_time is not None:
            times[key].add(round(h.trigger_time, 1))
    if not times:
        return "no TriggerTime: not a cine"
    phases = max(len(t) for t in times.values())
    return None if phases >= min_phases else f"{phases} phase(s) < {min_phases}: not a cine"


def _choose(
    layouts: list[tuple[int, CineLayout, ViewDecision, str]], study: str
) -> tuple[dict[str, ViewCine], list[Fault], bool]:
    """One cine per view: SAX series merged into one stack, the latest series for each long-axis view."""
    faults: list[Fault] = []
    cines: dict[str, ViewCine] = {}
    partial = False
    by_view: dict[str, list[tuple[int, CineLayout, ViewDecision, str]]] = defaultdict(list)
    for item in sorted(layouts, key=lambda x: -x[0]):
        by_view[item[2].view].append(item)
    for view, items in sorted(by_view.items()):
        if view == "SAX":
            ref = items[0][1].normal
            stack = [it for it in items if abs(float(it[1].normal @ ref)) > np.cos(np.radians(10))]
            merged, more = merge_stacks([it[1] for it in stack], study)
            faults += more
            partial |= any(loses_data(f) for f in more)
            if merged is not None:
                cines[view] = ViewCine(view, merged, items[0][2], items[0][3])
            continue
        cines[view] = ViewCine(view, items[0][1], items[0][2], items[0][3])
        for it in items[1:]:
            name = it[1].frames[0][0].header.ref.name
            faults.append(Fault(study, name, "series", f"another {view} cine superseded it; not stored"))
    return cines, faults, partial


def plan_study(
    headers: Sequence[Header],
    study: str,
    rules: ViewRules,
    min_phases: int,
    fallback_view: str | None = None,
) -> StudyPlan:
    """Decide which cine goes to which view for one study (headers only; no pixels read).

    Args:
        headers: The study's headers.
        study: Hashed study key, for fault entries.
        rules: View rules.
        min_phases: Fewest phases of a cine.
        fallback_view: View given to a study's only cine when neither description nor geometry decide it.
    """
    faults: list[Fault] = []
    ordered: list[tuple[int, CineLayout, str]] = []
    partial = False
    for series in _group_series(split_frames(headers)).values():
        first = series[0]
        reason = cine_skip_reason(series, min_phases) or undecodable_reason(first.transfer_syntax)
        if reason is not None:
            faults.append(Fault(study, first.ref.name, "series", f"skipped series {first.series_number}: {reason}"))
            continue
        layout, more = order_cine(series, study)
        faults += more
        partial |= any(loses_data(f) for f in more)
        if layout is not None:
            ordered.append((first.series_number, layout, first.series_description))
    planes = [SeriesPlane(d, lay.orientation if _has_geometry(lay) else None, lay.n_slices) for _, lay, d in ordered]
    decisions = identify_views(planes, rules)
    if fallback_view and len(ordered) == 1 and decisions[0].view == "OTHER" and decisions[0].source == "geometry":
        decisions[0] = ViewDecision(fallback_view, "fallback", decisions[0].reason)
    kept = []
    for (num, lay, desc), dec in zip(ordered, decisions, strict=True):
        if dec.view == "OTHER":
            name = lay.frames[0][0].header.ref.name
            faults.append(Fault(study, name, "view", f"series {num} not stored: view OTHER ({dec.reason})"))
        else:
            kept.append((num, lay, dec, desc))
    cines, more, merged_partial = _choose(kept, study)
    return StudyPlan(cines, faults + more, partial or merged_partial)


def _has_geometry(layout: CineLayout) -> bool:
    return layout.provenance.get("orientation_source") == "ImageOrientationPatient" and bool(
        np.any(plane_normal(layout.orientation))
    )
