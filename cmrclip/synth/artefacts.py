"""Image-only effects that change signal but not anatomy: flow jets, metal artefacts, leaflet motion."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from cmrclip.synth.anatomy import AO_DIR_DEG, AO_START, HeartParams, HeartState, Jet, Tissue

__all__ = ["MITRAL_CENTER", "overlay", "valve_center"]

logger = logging.getLogger(__name__)

_U3 = np.array([np.cos(np.deg2rad(AO_DIR_DEG)), np.sin(np.deg2rad(AO_DIR_DEG)), 0.0])
MITRAL_CENTER = tuple(-10 * _U3 + np.array([0.0, 0.0, 0.5]))
_BLOOD = [Tissue.LV_BLOOD, Tissue.RV_BLOOD, Tissue.LA_BLOOD, Tissue.RA_BLOOD, Tissue.AORTA, Tissue.PA, Tissue.FLUID]


def valve_center(valve: str) -> tuple[float, float, float]:
    """Heart-frame centre (mm) of the ``aortic``, ``mitral``, ``tricuspid`` or ``pulmonary`` valve."""
    centers = {
        "aortic": (AO_START[0], AO_START[1], 3.0),
        "mitral": MITRAL_CENTER,
        "tricuspid": (36.0, -4.0, 1.0),
        "pulmonary": (0.0, 42.0, 2.0),
    }
    return tuple(float(v) for v in centers[valve])


def _active(st: HeartState, p: HeartParams, window: str) -> np.ndarray:
    systolic = st.phase <= p.es_fraction + 0.03
    return (systolic if window == "systole" else ~systolic).astype(np.float32)


def _jet(q: np.ndarray, jet: Jet) -> np.ndarray:
    """Signal loss in [0, 1] at heart points q [N, 3] for one jet (strongest at the origin)."""
    d = np.asarray(jet.direction, dtype=np.float32)
    d = d / np.linalg.norm(d)
    r = q - np.asarray(jet.origin, dtype=np.float32)
    along = r @ d
    perp = np.sqrt(np.maximum((r * r).sum(-1) - along**2, 0))
    radius = 2.0 + np.tan(np.deg2rad(jet.half_angle_deg)) * along
    inside = (along >= 0) & (along <= jet.length) & (perp <= radius)
    return np.where(inside, jet.depth * (1 - 0.6 * along / jet.length), 0).astype(np.float32)


def _metal(dist: np.ndarray, radius: float) -> np.ndarray:
    """Susceptibility artefact: a signal void with a bright rim, as a multiplier."""
    void = np.where(dist < radius, 0.05, 1.0)
    rim = np.where((dist >= radius) & (dist < radius * 1.3), 1.7, 1.0)
    return (void * rim).astype(np.float32)


def _leaflets(q: np.ndarray, p: HeartParams, st: HeartState) -> np.ndarray:
    """Dark moving leaflets: prolapse bowing into the LA and systolic anterior motion into the LVOT."""
    out = np.ones((len(st.phase), len(q)), dtype=np.float32)
    m = np.asarray(MITRAL_CENTER, dtype=np.float32)
    r = np.sqrt((q[:, 0] - m[0]) ** 2 + (q[:, 1] - m[1]) ** 2)
    sys = _active(st, p, "systole")[:, None] * np.sin(np.pi * st.systole)[:, None].astype(np.float32)
    if p.mvp:
        height = p.mvp * np.clip(1 - (r / 13) ** 2, 0, 1)[None, :] * sys
        out[(np.abs(q[:, 2][None, :] - m[2] - height) < 1.3) & (r < 13)[None, :] & (sys > 0.2)] = 0.15
    if p.sam:
        tip = m + (_U3 * (6 + 10 * p.sam))[None, :].astype(np.float32) * sys - np.array([0, 0, 5], np.float32) * sys
        for f in np.flatnonzero(sys[:, 0] > 0.3):
            out[f, ((q - tip[f]) ** 2).sum(-1) < 3.0**2] = 0.15
    return out


def _valves(q: np.ndarray, p: HeartParams, st: HeartState) -> np.ndarray:
    """Normal leaflet motion as thin dark lines.

    The AV valves are closed in systole and open (a funnel) in diastole; the semilunar valves close in diastole.
    """
    out = np.ones((len(st.phase), len(q)), dtype=np.float32)
    systole = _active(st, p, "systole").astype(bool)
    for valve, radius in (("mitral", 13.0), ("tricuspid", 14.0)):
        c = np.asarray(valve_center(valve), dtype=np.float32)
        r = np.sqrt((q[:, 0] - c[0]) ** 2 + (q[:, 1] - c[1]) ** 2)
        dz = q[:, 2] - c[2]
        closed = (np.abs(dz) < 1.0) & (r < radius)
        funnel = (np.abs(r - (radius - 1.5 + 0.15 * dz)) < 0.9) & (dz < 0) & (dz > -0.9 * radius)
        out[systole] *= np.where(closed, 0.3, 1.0).astype(np.float32)
        out[~systole] *= np.where(funnel, 0.35, 1.0).astype(np.float32)
    for valve, radius in (("aortic", p.ao_radius), ("pulmonary", p.pa_radius)):
        c = np.asarray(valve_center(valve), dtype=np.float32)
        r = np.sqrt((q[:, 0] - c[0]) ** 2 + (q[:, 1] - c[1]) ** 2)
        cusps = (np.abs(q[:, 2] - c[2] + 0.08 * r) < 0.9) & (r < radius)
        out[~systole] *= np.where(cusps, 0.35, 1.0).astype(np.float32)
    return out


def overlay(points: np.ndarray, labels: np.ndarray, p: HeartParams, st: HeartState, geo: Any) -> np.ndarray:
    """Multiplier [F, rows, cols] for the label image of one plane (``geo``: :class:`render.Geometry`)."""
    n_phases = labels.shape[0]
    mult = np.ones(labels.shape, dtype=np.float32).reshape(n_phases, -1)
    flat = points.reshape(-1, 3)
    q = geo.to_heart(flat).astype(np.float32)
    blood = np.isin(labels.reshape(n_phases, -1), [int(t) for t in _BLOOD])
    mult *= np.where(blood, _valves(q, p, st), 1.0)
    for jet in p.jets:
        loss = _jet(q, jet)
        if loss.any():
            mult *= 1 - _active(st, p, jet.window)[:, None] * loss[None, :] * blood
    if p.mvp or p.sam:
        mult *= _leaflets(q, p, st)
    if p.prosthetic:
        c = np.asarray(valve_center(p.prosthetic), dtype=np.float32)
        mult *= _metal(np.sqrt(((q - c) ** 2).sum(-1)), 9.0)[None, :]
    if p.sternal_wires:
        sternum = geo.body + np.array([0.0, -100.0, 0.0])
        for k in range(p.sternal_wires):
            wire = sternum + np.array([0.0, 0.0, geo.origin[2] - geo.body[2] - 70 + 32 * k])
            dist = np.sqrt(((flat - wire) ** 2).sum(-1))
            mult *= _metal(dist, 6.0)[None, :]
    return mult.reshape(labels.shape)
