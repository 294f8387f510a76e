"""From a set of conditions to a heart: prevalences, co-occurrence, and each condition's cine signature.

Every condition with cine visibility ``yes`` or ``partly`` changes :class:`HeartParams` (geometry, function, jets,
masses or artefacts) with a severity drawn per study; the ``weak`` ones (myocarditis, pericarditis, sarcoidosis)
leave the images unchanged and appear in the report only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from cmrclip.conditions import load_conditions
from cmrclip.synth.anatomy import AO_DIR, LA_CENTER, PA_DIR, HeartParams, Jet, Mass, Tissue
from cmrclip.synth.artefacts import valve_center

__all__ = ["PREVALENCE", "heart_params", "sample_conditions"]

logger = logging.getLogger(__name__)

PREVALENCE: dict[str, float] = {
    "Amyloid": 2, "Aortic.dilation": 4, "Arrhythmogenic.right.ventricular.cardiomyopathy": 1.5,
    "Atrial.Myxoma": 0.6, "Atrial.Septal.Defect": 1.5, "Bicuspid.Valve": 2, "Cardiac.Thrombus": 1.2,
    "Cardiac.Tumor": 0.8, "Hypertrophic.Cardiomyopathy": 6, "Ischemic.Cardiomyopathy": 8, "LV.Non.Compaction": 1.5,
    "Large.Pericardial.Effusion": 2, "Left.Atrial.Dilation": 6, "Left.Ventricular.Dilation": 7,
    "Left.Ventricular.Hypertrophy": 5, "Lipomatous.Atrial.Wall": 1, "Myocarditis": 4, "Non.Ischemic.cardiomyopathy": 7,
    "Other.Cardiac.Mass": 1, "Pericarditis": 2, "Previous.Surgery": 4, "Prosthetic.Valve": 2, "Pulmonary.Dilation": 3,
    "Pulmonary.Hypertension": 3, "Pulmonary.Stenosis": 1, "Right.Atrial.Dilation": 4, "Right.Ventricular.Dilation": 5,
    "Right.Ventricular.Hypertrophy": 2, "Sarcoidosis": 2, "Severe.Aortic.Stenosis": 2,
    "Severe.Mitral.Regurgitation": 3, "Systolic.Anterior.Motion.of.Mitral": 1.5, "Tetralogy": 1.5,
    "Ventricular.Septal.Defect": 1, "Severe.Aortic.Regurgitation": 2, "Severe.Tricuspid.Regurgitation": 2.5,
    "Mitral.Valve.Prolapse": 2, "LV.Aneurysm": 1.5, "Coarctation": 1,
}  # fmt: skip
"""Relative weights of the conditions as a study's primary finding (unknown keys get weight 1)."""

_IMPLIES: dict[str, tuple[tuple[str, float], ...]] = {
    "Amyloid": (("Left.Atrial.Dilation", 0.8), ("Right.Atrial.Dilation", 0.5)),
    "Systolic.Anterior.Motion.of.Mitral": (("Hypertrophic.Cardiomyopathy", 1.0),),
    "Cardiac.Thrombus": (("Ischemic.Cardiomyopathy", 0.8),),
    "LV.Aneurysm": (("Ischemic.Cardiomyopathy", 0.7),),
    "Tetralogy": (("Previous.Surgery", 1.0), ("Right.Ventricular.Dilation", 0.8)),
    "Prosthetic.Valve": (("Previous.Surgery", 1.0),),
    "Severe.Mitral.Regurgitation": (("Left.Atrial.Dilation", 0.7),),
    "Severe.Aortic.Regurgitation": (("Left.Ventricular.Dilation", 0.6),),
    "Severe.Tricuspid.Regurgitation": (("Right.Atrial.Dilation", 0.8),),
    "Pulmonary.Hypertension": (("Right.Ventricular.Hypertrophy", 0.6), ("Pulmonary.Dilation", 0.5)),
    "Atrial.Septal.Defect": (("Right.Ventricular.Dilation", 0.6),),
    "Non.Ischemic.cardiomyopathy": (("Left.Ventricular.Dilation", 0.6),),
}
_EXCLUSIVE = (
    {"Hypertrophic.Cardiomyopathy", "Left.Ventricular.Dilation", "Non.Ischemic.cardiomyopathy", "Amyloid"},
    {"Ischemic.Cardiomyopathy", "Non.Ischemic.cardiomyopathy", "Hypertrophic.Cardiomyopathy", "LV.Non.Compaction"},
    {"Atrial.Myxoma", "Cardiac.Tumor", "Other.Cardiac.Mass"},
    {"Prosthetic.Valve", "Severe.Aortic.Stenosis", "Bicuspid.Valve"},
)


def sample_conditions(rng: np.random.Generator, keys: list[str]) -> list[str]:
    """Draw a plausible set of positive conditions (most studies have none, one or two), in taxonomy order."""
    n = int(rng.choice(4, p=[0.42, 0.33, 0.17, 0.08]))
    weights = np.array([PREVALENCE.get(k, 1.0) for k in keys])
    chosen: set[str] = set()
    for key in rng.choice(keys, size=min(n + 2, len(keys)), replace=False, p=weights / weights.sum()):
        if len(chosen) >= n:
            break
        if any(key in group and chosen & group for group in _EXCLUSIVE):
            continue
        chosen.add(str(key))
    for key in sorted(chosen):
        for implied, prob in _IMPLIES.get(key, ()):
            blocked = any(implied in group and (chosen - {implied}) & group for group in _EXCLUSIVE)
            if implied in keys and not blocked and rng.random() < prob:
                chosen.add(implied)
            elif prob >= 1.0 and implied not in chosen:
                chosen.discard(key)  # a requirement that cannot hold: drop the condition that needs it
    return [k for k in keys if k in chosen]


Effect = Callable[[dict[str, Any], float, np.random.Generator], None]


def _dilate_rv(d: dict, f: float) -> None:
    d["rv_axes"] = (*(v * f for v in d["rv_axes"][:2]), d["rv_axes"][2] * (1 + (f - 1) / 3))


def _jet(valve: str, direction: object, length: float, angle: float, window: str, depth: float = 0.75) -> Jet:
    return Jet(valve_center(valve), tuple(float(v) for v in direction), length, angle, window, depth)


def _add(d: dict, name: str, item: object) -> None:
    d[name] = (*d[name], item)


def _low_ef(d: dict, lo: float, hi: float, s: float) -> None:
    d["ef"] = min(d["ef"], hi - s * (hi - lo))


_EFFECTS: dict[str, Effect] = {
    "Amyloid": lambda d, s, r: d.update(
        wall=13 + 4 * s, edv=min(d["edv"], 95 + 20 * r.random()), la_radius=27 + 4 * s, ra_radius=26 + 4 * s,
        effusion=max(d["effusion"], 3.0), ef=min(d["ef"], 58 - 12 * s)),
    "Aortic.dilation": lambda d, s, r: d.update(ao_radius=19 + 5 * s),
    "Arrhythmogenic.right.ventricular.cardiomyopathy": lambda d, s, r: (
        _dilate_rv(d, 1.2 + 0.15 * s), d.update(rv_ef=min(d["rv_ef"], 0.42 - 0.15 * s), rv_bulge=6 + 6 * s)),
    "Atrial.Myxoma": lambda d, s, r: _add(d, "masses", Mass(
        (LA_CENTER[0] + 8, LA_CENTER[1] + 3, LA_CENTER[2] - 4), 8 + 5 * s, Tissue.MASS,
        (Tissue.LA_BLOOD, Tissue.ATRIAL_WALL, Tissue.LV_BLOOD), -6 - 4 * s)),
    "Atrial.Septal.Defect": lambda d, s, r: (d.update(asd=8 + 12 * s), _add(d, "jets", Jet(
        (14.0, 0.0, 17.0), (1.0, 0.0, -0.1), 30, 14, "diastole", 0.7))),
    "Bicuspid.Valve": lambda d, s, r: _add(
        d, "jets", _jet("aortic", np.multiply(AO_DIR, (2.2, 2.2, 1)), 35, 12, "systole", 0.5 + 0.2 * s)),
    "Cardiac.Thrombus": lambda d, s, r: _add(d, "masses", Mass((0.0, 0.0, 0.0), 6 + 5 * s, Tissue.THROMBUS,
                                                              (Tissue.LV_BLOOD, Tissue.TRABECULAE))),
    "Cardiac.Tumor": lambda d, s, r: _add(d, "masses", Mass((-38.0, 6.0, -45.0), 11 + 8 * s, Tissue.MASS)),
    "Hypertrophic.Cardiomyopathy": lambda d, s, r: d.update(
        septal_extra=8 + 12 * s, edv=min(d["edv"], 105 + 25 * r.random()), ef=max(d["ef"], 66 + 10 * r.random())),
    "Ischemic.Cardiomyopathy": lambda d, s, r: (
        d.update(edv=max(d["edv"], 170 + 70 * s)), _low_ef(d, 20, 42, s),
        _add(d, "regional", (90.0 + 30 * r.standard_normal(), 110 + 40 * s, 0.85 + 0.15 * s))),
    "LV.Non.Compaction": lambda d, s, r: (d.update(noncompaction=6 + 5 * s), _low_ef(d, 35, 52, s)),
    "Large.Pericardial.Effusion": lambda d, s, r: d.update(effusion=11 + 14 * s),
    "Left.Atrial.Dilation": lambda d, s, r: d.update(la_radius=max(d["la_radius"], 29 + 6 * s)),
    "Left.Ventricular.Dilation": lambda d, s, r: (d.update(edv=max(d["edv"], 225 + 100 * s)), _low_ef(d, 40, 56, s)),
    "Left.Ventricular.Hypertrophy": lambda d, s, r: d.update(wall=max(d["wall"], 13 + 5 * s)),
    "Lipomatous.Atrial.Wall": lambda d, s, r: d.update(septum_fat=10 + 7 * s),
    "Non.Ischemic.cardiomyopathy": lambda d, s, r: (d.update(edv=max(d["edv"], 180 + 90 * s)), _low_ef(d, 18, 40, s)),
    "Other.Cardiac.Mass": lambda d, s, r: _add(d, "masses", Mass(
        (48.0, -4.0, 16.0), 9 + 6 * s, Tissue.MASS, (Tissue.RA_BLOOD, Tissue.ATRIAL_WALL, Tissue.FAT))),
    "Previous.Surgery": lambda d, s, r: d.update(sternal_wires=int(3 + 3 * s)),
    "Prosthetic.Valve": lambda d, s, r: d.update(prosthetic="aortic" if r.random() < 0.6 else "mitral"),
    "Pulmonary.Dilation": lambda d, s, r: d.update(pa_radius=17 + 6 * s),
    "Pulmonary.Hypertension": lambda d, s, r: (
        _dilate_rv(d, 1.12 + 0.15 * s), d.update(rv_wall=max(d["rv_wall"], 5.5 + 2 * s), rv_ef=0.42 - 0.12 * s)),
    "Pulmonary.Stenosis": lambda d, s, r: _add(d, "jets", _jet("pulmonary", PA_DIR, 35, 10, "systole", 0.8)),
    "Right.Atrial.Dilation": lambda d, s, r: d.update(ra_radius=max(d["ra_radius"], 28 + 6 * s)),
    "Right.Ventricular.Dilation": lambda d, s, r: _dilate_rv(d, 1.2 + 0.18 * s),
    "Right.Ventricular.Hypertrophy": lambda d, s, r: d.update(rv_wall=max(d["rv_wall"], 6.5 + 3 * s)),
    "Severe.Aortic.Stenosis": lambda d, s, r: (d.update(wall=max(d["wall"], 11.0)), _add(
        d, "jets", _jet("aortic", AO_DIR, 40, 6, "systole", 0.85))),
    "Severe.Mitral.Regurgitation": lambda d, s, r: _add(d, "jets", _jet("mitral", (-0.3, -0.4, 1), 30, 18, "systole")),
    "Systolic.Anterior.Motion.of.Mitral": lambda d, s, r: (d.update(sam=0.5 + 0.5 * s), _add(
        d, "jets", _jet("mitral", (-0.2, -0.5, 1), 18, 12, "systole", 0.5))),
    "Tetralogy": lambda d, s, r: (d.update(patch=True, rv_wall=max(d["rv_wall"], 5.0)), _add(
        d, "jets", _jet("pulmonary", -np.asarray(PA_DIR), 30, 15, "diastole", 0.7))),
    "Ventricular.Septal.Defect": lambda d, s, r: (d.update(vsd=5 + 7 * s), _add(
        d, "jets", Jet((20.0, 0.0, -15.0), (1.0, 0.1, 0.1), 25, 12, "systole", 0.7))),
    "Severe.Aortic.Regurgitation": lambda d, s, r: _add(
        d, "jets", _jet("aortic", (-0.2, -0.3, -1), 40, 12, "diastole")),
    "Severe.Tricuspid.Regurgitation": lambda d, s, r: _add(
        d, "jets", _jet("tricuspid", (0.2, 0, 1), 28, 20, "systole")),
    "Mitral.Valve.Prolapse": lambda d, s, r: d.update(mvp=4 + 4 * s),
    "LV.Aneurysm": lambda d, s, r: (d.update(aneurysm=8 + 8 * s), _low_ef(d, 25, 45, s)),
    "Coarctation": lambda d, s, r: d.update(wall=max(d["wall"], 10.5 + 1.5 * s)),
}  # fmt: skip


def _normal(rng: np.random.Generator, sex: str) -> dict[str, Any]:
    size = 1.0 if sex == "M" else 0.85
    return {
        "edv": float(np.clip(rng.normal(150 * size, 18), 95, 190)),
        "ef": float(np.clip(rng.normal(62, 4), 55, 72)),
        "c_ratio": float(rng.uniform(2.9, 3.4)),
        "wall": float(rng.uniform(7.0, 9.5)),
        "rv_axes": tuple(float(v) for v in np.array([50.0, 44.0, 72.0]) * rng.uniform(0.93, 1.05) * size**0.33),
        "rv_ef": float(rng.uniform(0.57, 0.68)),
        "rv_wall": float(rng.uniform(3.0, 4.0)),
        "la_radius": float(rng.uniform(20, 24)),
        "ra_radius": float(rng.uniform(19, 23)),
        "ao_radius": float(rng.uniform(12.5, 15.5)),
        "pa_radius": float(rng.uniform(10.5, 13.0)),
        "es_fraction": float(rng.uniform(0.34, 0.4)),
        "effusion": 0.0,
        "masses": (),
        "jets": (),
        "regional": (),
    }


_CAPS: tuple[tuple[str, str, float], ...] = (
    ("Left.Ventricular.Dilation", "edv", 205.0),
    ("Left.Atrial.Dilation", "la_radius", 24.5),
    ("Right.Atrial.Dilation", "ra_radius", 23.5),
    ("Aortic.dilation", "ao_radius", 16.0),
    ("Pulmonary.Dilation", "pa_radius", 14.0),
    ("Right.Ventricular.Hypertrophy", "rv_wall", 5.0),
    ("Large.Pericardial.Effusion", "effusion", 4.0),
)
"""Without the condition, its measure stays within normal limits (so the label is recoverable from the images)."""


def _consistent(d: dict[str, Any], conditions: list[str]) -> None:
    for key, name, cap in _CAPS:
        if key not in conditions:
            d[name] = min(d[name], cap)
    if "Right.Ventricular.Dilation" not in conditions:
        d["rv_axes"] = tuple(min(v, m) for v, m in zip(d["rv_axes"], (52.5, 46.0, 76.0), strict=True))
    if "Left.Ventricular.Hypertrophy" not in conditions and "Amyloid" not in conditions:
        d["wall"] = min(d["wall"], 12.0)


def heart_params(
    conditions: list[str], rng: np.random.Generator, sex: str = "M"
) -> tuple[HeartParams, dict[str, float]]:
    """Build the heart for a study with these positive conditions.

    Returns:
        The parameters and the severity (0-1) drawn for each condition (weak conditions included).
    """
    d = _normal(rng, sex)
    severity: dict[str, float] = {}
    visible = {c.key for c in load_conditions() if c.cine_visible}
    for key in conditions:
        severity[key] = float(rng.uniform())
        if key in visible and key in _EFFECTS:
            _EFFECTS[key](d, severity[key], rng)
    _consistent(d, conditions)
    ef = d.pop("ef")
    edv = d.pop("edv")
    params = HeartParams(edv=edv, esv=edv * (1 - ef / 100), **d)
    if "LV.Aneurysm" in conditions:
        params = replace(params, regional=(*params.regional, (100.0, 140.0, 1.2)))
    return params, severity
