"""View identification: SAX / 2CH / 3CH / 4CH from SeriesDescription (data-driven rules), else from geometry.

The rules live in ``cmrclip/configs/views.yaml`` (a site can pass its own file); that file also documents the
geometric method. Every decision records its source: ``description`` or ``geometry``.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from cmrclip.config import packaged_yaml
from cmrclip.errors import ConfigError
from cmrclip.ingest.geometry import plane_normal

__all__ = [
    "SeriesPlane",
    "ViewDecision",
    "ViewRules",
    "identify_views",
    "lax_rotation_deg",
    "load_view_rules",
    "normalize_description",
    "view_from_description",
]

logger = logging.getLogger(__name__)

_LAX_VIEWS = ("4CH", "2CH", "3CH")


@dataclass(frozen=True)
class ViewRules:
    """Compiled view-identification rules (see ``configs/views.yaml``)."""

    exclude: tuple[re.Pattern[str], ...]
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    min_sax_slices: int
    parallel_tol_deg: float
    min_lax_angle_deg: float
    max_deviation_deg: float
    rotation_deg: dict[str, float]


@dataclass(frozen=True)
class SeriesPlane:
    """What view identification needs to know about one cine series."""

    description: str
    orientation: tuple[float, ...] | None
    n_positions: int


@dataclass(frozen=True)
class ViewDecision:
    """A series' view (``SAX``, ``2CH``, ``3CH``, ``4CH`` or ``OTHER``), how it was decided, and why."""

    view: str
    source: str
    reason: str = ""


def _compile(data: dict, source: str) -> ViewRules:
    try:
        geo = data["geometry"]
        patterns = tuple((view, re.compile(p)) for view in ("SAX", *_LAX_VIEWS) for p in data["views"].get(view, []))
        return ViewRules(
            exclude=tuple(re.compile(p) for p in data.get("exclude", [])),
            patterns=patterns,
            min_sax_slices=int(geo["min_sax_slices"]),
            parallel_tol_deg=float(geo["parallel_tol_deg"]),
            min_lax_angle_deg=float(geo["min_lax_angle_deg"]),
            max_deviation_deg=float(geo["max_deviation_deg"]),
            rotation_deg={k: float(geo["rotation_deg"][k]) for k in _LAX_VIEWS},
        )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"view rules {source}: {exc!r}; compare with cmrclip/configs/views.yaml") from exc


@cache
def _packaged_rules() -> ViewRules:
    return _compile(packaged_yaml("views.yaml"), "cmrclip/configs/views.yaml")


def load_view_rules(path: Path | None = None) -> ViewRules:
    """Load the packaged rules, or a site's own YAML file with the same keys.

    Raises:
        ConfigError: if the file is missing or malformed.
    """
    if path is None:
        return _packaged_rules()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"view rules file {path} does not exist")
    return _compile(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path))


def normalize_description(text: str) -> str:
    """Lower-case and turn every run of non-alphanumeric characters into one space."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def view_from_description(description: str, rules: ViewRules) -> str | None:
    """Map a SeriesDescription to a view, ``"OTHER"`` for excluded series, or None when it says nothing."""
    text = normalize_description(description)
    if not text:
        return None
    if any(p.search(text) for p in rules.exclude):
        return "OTHER"
    for view, pattern in rules.patterns:
        if pattern.search(text):
            return view
    return None


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two lines (directions up to sign), in [0, 90]."""
    c = abs(float(np.dot(a, b)))
    return float(np.degrees(np.arccos(min(1.0, c))))


def lax_rotation_deg(sax_normal: np.ndarray, lax_normal: np.ndarray) -> float:
    """Rotation of a long-axis plane about the long axis, in [0, 180) degrees (see ``configs/views.yaml``)."""
    a = np.asarray(sax_normal, dtype=np.float64)
    a = a / np.linalg.norm(a)
    if a[0] < 0:
        a = -a
    up = np.array([0.0, 0.0, 1.0]) - a[2] * a
    if np.linalg.norm(up) < 1e-6:
        up = np.array([0.0, -1.0, 0.0]) - a[1] * a
    u = up / np.linalg.norm(up)
    v = np.cross(a, u)
    m = np.asarray(lax_normal, dtype=np.float64)
    return float(np.degrees(np.arctan2(m @ v, m @ u)) % 180.0)


def _sax_normal(planes: list[SeriesPlane], rules: ViewRules) -> np.ndarray | None:
    """Normal of the largest stack of parallel planes, if it has enough positions."""
    best: tuple[int, np.ndarray] | None = None
    for p in planes:
        if p.orientation is None:
            continue
        n = plane_normal(p.orientation)
        count = sum(
            q.n_positions
            for q in planes
            if q.orientation is not None and _angle_deg(n, plane_normal(q.orientation)) <= rules.parallel_tol_deg
        )
        if best is None or count > best[0]:
            best = (count, n)
    if best is None or best[0] < rules.min_sax_slices:
        return None
    return best[1]


def _lax_cost(rotations: list[float], views: tuple[str, ...], rules: ViewRules) -> float:
    return sum(
        abs((rot - rules.rotation_deg[v] + 90.0) % 180.0 - 90.0) for rot, v in zip(rotations, views, strict=True)
    )


def _assign_lax(rotations: list[float], rules: ViewRules) -> list[str]:
    """Views for a study's long-axis planes: jointly (each view once) for up to three planes, else nearest."""
    if len(rotations) > len(_LAX_VIEWS):
        return [min(_LAX_VIEWS, key=lambda v, r=r: _lax_cost([r], (v,), rules)) for r in rotations]
    options = itertools.permutations(_LAX_VIEWS, len(rotations))
    return list(min(options, key=lambda views: _lax_cost(rotations, views, rules)))


def _by_geometry(planes: list[SeriesPlane], sax: np.ndarray | None, rules: ViewRules) -> list[ViewDecision]:
    """Decide undescribed series from geometry: parallel to the SAX stack, else long-axis by rotation."""
    out: list[ViewDecision | None] = [None] * len(planes)
    lax: list[tuple[int, float]] = []
    for i, plane in enumerate(planes):
        if plane.orientation is None:
            out[i] = ViewDecision("OTHER", "geometry", "no ImageOrientationPatient")
        elif sax is None:
            out[i] = ViewDecision("OTHER", "geometry", "no SAX stack in the study to reference")
        else:
            n = plane_normal(plane.orientation)
            tilt = _angle_deg(n, sax)
            if tilt <= rules.parallel_tol_deg:
                out[i] = ViewDecision("SAX", "geometry", "parallel to the SAX stack")
            elif tilt < rules.min_lax_angle_deg:
                out[i] = ViewDecision("OTHER", "geometry", f"oblique ({tilt:.0f} deg from the SAX normal)")
            else:
                lax.append((i, lax_rotation_deg(sax, n)))
    views = _assign_lax([r for _, r in lax], rules)
    for (i, rot), view in zip(lax, views, strict=True):
        dev = abs((rot - rules.rotation_deg[view] + 90.0) % 180.0 - 90.0)
        if dev > rules.max_deviation_deg:
            out[i] = ViewDecision("OTHER", "geometry", f"long-axis rotation {rot:.0f} deg matches no view")
        else:
            out[i] = ViewDecision(view, "geometry", f"long-axis rotation {rot:.0f} deg")
    return [d for d in out if d is not None]


def identify_views(planes: list[SeriesPlane], rules: ViewRules | None = None) -> list[ViewDecision]:
    """Decide the view of every cine series of one study.

    Args:
        planes: One entry per cine series of the study.
        rules: View rules (the packaged ones by default).

    Returns:
        One decision per series, in the same order.
    """
    rules = rules or load_view_rules()
    decisions: list[ViewDecision | None] = [None] * len(planes)
    for i, p in enumerate(planes):
        view = view_from_description(p.description, rules)
        if view is not None:
            decisions[i] = ViewDecision(view, "description", "excluded by description" if view == "OTHER" else "")
    described_sax = [p for p, d in zip(planes, decisions, strict=True) if d is not None and d.view == "SAX"]
    undecided = [p for p, d in zip(planes, decisions, strict=True) if d is None]
    sax = _sax_normal(described_sax, rules)
    if sax is None:
        sax = _sax_normal(undecided, rules)
    if sax is not None:  # record the measured rotation of described long-axis planes (for calibration)
        for i, (p, d) in enumerate(zip(planes, decisions, strict=True)):
            if d is not None and d.view in _LAX_VIEWS and p.orientation is not None:
                rot = lax_rotation_deg(sax, plane_normal(p.orientation))
                decisions[i] = ViewDecision(d.view, d.source, f"long-axis rotation {rot:.0f} deg")
    todo = [i for i, d in enumerate(decisions) if d is None]
    for i, decision in zip(todo, _by_geometry([planes[i] for i in todo], sax, rules), strict=True):
        decisions[i] = decision
    return [d for d in decisions if d is not None]
