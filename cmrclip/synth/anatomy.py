"""A 3D+time heart model made of implicit surfaces, evaluated point-wise (no voxel volume).

The heart frame has its origin at the centre of the LV base (mitral plane), ``+z`` from apex to base, ``+x``
towards the septum/RV and ``+y`` anterior. The LV is a thick-walled half-ellipsoid (``z <= 0``) whose cavity
follows a smooth volume curve between EDV and ESV; the myocardium keeps its volume, so the wall thickens in
systole. The RV wraps round the septum, the atria, aortic root and pulmonary trunk sit above the base, and the
whole heart lies in a pericardial sac. Conditions change the :class:`HeartParams` (see ``phenotypes.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = [
    "HeartParams",
    "HeartState",
    "Jet",
    "Mass",
    "Tissue",
    "heart_labels",
    "heart_state",
    "ventricle_labels",
    "volume_curve",
]

logger = logging.getLogger(__name__)


class Tissue(IntEnum):
    """Anatomical labels, as written in the masks."""

    AIR = 0
    BODY = 1
    FAT = 2
    LUNG = 3
    LIVER = 4
    BONE = 5
    LV_BLOOD = 6
    LV_MYO = 7
    RV_BLOOD = 8
    RV_MYO = 9
    LA_BLOOD = 10
    RA_BLOOD = 11
    ATRIAL_WALL = 12
    AORTA = 13
    PA = 14
    VESSEL_WALL = 15
    PERICARDIUM = 16
    FLUID = 17
    MASS = 18
    THROMBUS = 19
    PATCH = 20
    TRABECULAE = 21


@dataclass(frozen=True)
class Mass:
    """A spherical mass: ``center`` in heart coordinates (mm), moving by ``motion`` (mm) along +z over the cycle."""

    center: tuple[float, float, float]
    radius: float
    tissue: Tissue
    inside: tuple[Tissue, ...] = ()
    motion: float = 0.0


@dataclass(frozen=True)
class Jet:
    """A dephasing flow jet (signal void) as a cone, active in ``"systole"`` or ``"diastole"``."""

    origin: tuple[float, float, float]
    direction: tuple[float, float, float]
    length: float
    half_angle_deg: float
    window: str
    depth: float = 0.7


@dataclass(frozen=True)
class HeartParams:
    """Everything that defines one heart; lengths in mm, volumes in ml."""

    edv: float = 140.0
    esv: float = 55.0
    c_ratio: float = 3.2
    wall: float = 9.0
    apex_ratio: float = 0.75
    long_shortening: float = 0.12
    septal_extra: float = 0.0
    rv_axes: tuple[float, float, float] = (50.0, 44.0, 72.0)
    rv_shift: float = 20.0
    rv_ef: float = 0.55
    rv_wall: float = 3.5
    rv_bulge: float = 0.0
    la_radius: float = 22.0
    ra_radius: float = 21.0
    ao_radius: float = 14.0
    pa_radius: float = 12.0
    effusion: float = 0.0
    pericardium: float = 1.5
    es_fraction: float = 0.37
    regional: tuple[tuple[float, float, float], ...] = ()
    aneurysm: float = 0.0
    noncompaction: float = 0.0
    vsd: float = 0.0
    asd: float = 0.0
    septum_fat: float = 0.0
    patch: bool = False
    masses: tuple[Mass, ...] = ()
    jets: tuple[Jet, ...] = field(default_factory=tuple)
    prosthetic: str = ""
    sternal_wires: int = 0
    sam: float = 0.0
    mvp: float = 0.0
    papillary: float = 5.0


@dataclass(frozen=True)
class HeartState:
    """Per-phase shape numbers (arrays of length F): LV endo (a, c), epi (A, C), RV scale, atrial scale."""

    phase: np.ndarray
    systole: np.ndarray
    a: np.ndarray
    c: np.ndarray
    outer_a: np.ndarray
    outer_c: np.ndarray
    rv_scale: np.ndarray
    atrial_scale: np.ndarray


def volume_curve(n_phases: int, es_fraction: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Return (phase in [0, 1), systolic fraction s in [0, 1], ES index): s = 0 at ED (phase 0), 1 at ES.

    The ES time is rounded to a sampled phase so that the smallest sampled volume is exactly the ESV.
    """
    k_es = max(1, round(es_fraction * n_phases))
    ts = k_es / n_phases
    phase = np.arange(n_phases, dtype=np.float64) / n_phases
    s = np.empty(n_phases)
    sys = phase <= ts
    s[sys] = (1 - np.cos(np.pi * phase[sys] / ts)) / 2
    u = (phase[~sys] - ts) / (1 - ts)
    fill = 1 - 0.8 * (1 - np.cos(np.pi * np.minimum(u / 0.4, 1.0))) / 2
    diastasis = 0.2 - 0.05 * (u - 0.4) / 0.35
    kick = 0.15 * (1 + np.cos(np.pi * (u - 0.75) / 0.25)) / 2
    s[~sys] = np.where(u < 0.4, fill, np.where(u < 0.75, diastasis, kick))
    return phase, s, k_es


def _solve_wall(a: np.ndarray, c: np.ndarray, myo_mm3: float, apex_ratio: float) -> np.ndarray:
    """Wall thickness T with (a + T)^2 (c + r T) = a^2 c + 3 V_myo / (2 pi) (Newton, monotone)."""
    target = a**2 * c + 3 * myo_mm3 / (2 * np.pi)
    t = np.full_like(a, 8.0)
    for _ in range(30):
        f = (a + t) ** 2 * (c + apex_ratio * t) - target
        df = 2 * (a + t) * (c + apex_ratio * t) + apex_ratio * (a + t) ** 2
        t = t - f / df
    return t


def heart_state(p: HeartParams, n_phases: int) -> HeartState:
    """Compute the per-phase LV/RV/atrial shape from the parameters (LV volume exactly the volume curve)."""
    phase, s, _ = volume_curve(n_phases, p.es_fraction)
    volume = (p.edv - s * (p.edv - p.esv)) * 1000.0
    v_ed = p.edv * 1000.0
    a_ed = (3 * v_ed / (2 * np.pi * p.c_ratio)) ** (1 / 3)
    c_ed = p.c_ratio * a_ed
    c = c_ed * (1 - p.long_shortening * s)
    a = np.sqrt(3 * volume / (2 * np.pi * c))
    big_a, big_c = a_ed + p.wall, c_ed + p.apex_ratio * p.wall
    myo = 2 * np.pi / 3 * (big_a**2 * big_c - a_ed**2 * c_ed)
    t = _solve_wall(a, c, myo, p.apex_ratio)
    rv_scale = 1 - s * (1 - np.sqrt(1 - p.rv_ef) * 1.06)
    atrial = 1 + 0.12 * s
    return HeartState(phase, s, a, c, a + t, c + p.apex_ratio * t, rv_scale, atrial)


def _b(x: np.ndarray) -> np.ndarray:
    """Per-phase array [F] -> [F, 1] for broadcasting against points [F, N] or [1, N]."""
    return np.asarray(x, dtype=np.float32)[:, None]


def _paint(lab: np.ndarray, mask: np.ndarray, tissue: int) -> None:
    """Set ``lab`` [F, N] to ``tissue`` where ``mask`` ([F, N] or static [1, N]) holds."""
    lab[np.broadcast_to(mask, lab.shape)] = tissue


def _sector(theta: np.ndarray, center_deg: float, width_deg: float) -> np.ndarray:
    """Smooth angular window (1 at the centre, 0 beyond half the width)."""
    d = (theta - np.deg2rad(center_deg) + np.pi) % (2 * np.pi) - np.pi
    return np.clip(1.5 - 1.5 * np.abs(d) / np.deg2rad(width_deg / 2), 0, 1).astype(np.float32)


def _lv(p: HeartParams, st: HeartState, x: np.ndarray, y: np.ndarray, z: np.ndarray, lab: np.ndarray) -> None:
    """Paint LV myocardium, cavity, septal hypertrophy, regional motion, aneurysm and non-compaction."""
    rho = np.sqrt(x * x + y * y)
    theta = np.arctan2(y, x)
    a, c, big_a, big_c = _b(st.a), _b(st.c), _b(st.outer_a), _b(st.outer_c)
    a_endo = a + 0 * rho
    a_epi = big_a + 0 * rho
    zn = np.clip(-z / c, 0, 1)
    if p.septal_extra:
        w = _sector(theta, 0, 150) * np.clip(1.3 - zn, 0, 1)
        a_endo = a_endo - 0.75 * p.septal_extra * w
        a_epi = a_epi + 0.25 * p.septal_extra * w
    for center, width, severity in p.regional:
        w = _sector(theta, center, width) * np.clip((zn - 0.3) / 0.3, 0, 1)
        a_endo = a_endo + w * severity * (float(st.a[0]) - a)
        a_epi = a_epi - w * (a_epi - a_endo - 0.5 * p.wall).clip(0)
    c_endo, c_epi = c, big_c
    if p.aneurysm:
        bulge = p.aneurysm * (0.6 + 0.4 * _b(st.systole))
        w = np.clip(zn * 1.6 - 0.6, 0, 1)
        a_endo = a_endo + bulge * 0.5 * w
        a_epi = np.maximum(a_epi, a_endo + 2.0)
        c_endo = c + bulge
        c_epi = c_endo + 2.0
    below = z <= 0
    epi = below & ((rho / a_epi) ** 2 + (z / c_epi) ** 2 <= 1)
    endo = below & ((rho / a_endo) ** 2 + (z / c_endo) ** 2 <= 1)
    _paint(lab, epi, Tissue.LV_MYO)
    _paint(lab, endo, Tissue.LV_BLOOD)
    if p.noncompaction:
        depth = (1 - np.sqrt((rho / a_endo) ** 2 + (z / c_endo) ** 2)) * a_endo
        spongy = (np.sin(9 * theta + 0.15 * z) * np.sin(0.35 * z) > 0.15) & (zn > 0.45)
        _paint(lab, endo & (depth < p.noncompaction) & spongy & (_sector(theta, 180, 220) > 0), Tissue.TRABECULAE)
    if p.papillary:
        _papillary(p, a, c, x, y, z, endo, lab)


def _papillary(
    p: HeartParams,
    a: np.ndarray,
    c: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    endo: np.ndarray,
    lab: np.ndarray,
) -> None:
    """Two papillary muscles (anterolateral, posteromedial) attached to the free wall, moving with it."""
    for angle in (135.0, -125.0):
        cx = (a - p.papillary) * np.cos(np.deg2rad(angle))
        cy = (a - p.papillary) * np.sin(np.deg2rad(angle))
        body = ((x - cx) ** 2 + (y - cy) ** 2) / p.papillary**2 + ((z + 0.45 * c) / (0.2 * c)) ** 2 <= 1
        _paint(lab, endo & body, Tissue.TRABECULAE)


def _rv(p: HeartParams, st: HeartState, x: np.ndarray, y: np.ndarray, z: np.ndarray, lab: np.ndarray) -> None:
    """Paint the RV: a half-ellipsoid shifted to the septal side, minus the LV, with a free wall."""
    ax, ay, az = (float(v) for v in p.rv_axes)
    scale = _b(st.rv_scale)
    xs = x - p.rv_shift
    if p.rv_bulge:
        theta = np.arctan2(y, xs)
        ax_eff = ax + p.rv_bulge * _sector(theta, 20, 60) * _b(st.systole)
    else:
        ax_eff = ax
    az = az * (1 - 0.08 * _b(st.systole))
    inner = (xs / (ax_eff * scale)) ** 2 + (y / (ay * scale)) ** 2 + (z / az) ** 2
    outer = (xs / (ax_eff * scale + p.rv_wall)) ** 2 + (y / (ay * scale + p.rv_wall)) ** 2
    outer = outer + (z / (az + p.rv_wall)) ** 2
    # the RV is a crescent on the septal side: it joins the LV at the insertion points (x = 0.4 A)
    free = (z <= 0) & (x > 0.4 * _b(st.outer_a)) & ~np.isin(lab, [Tissue.LV_MYO, Tissue.LV_BLOOD, Tissue.TRABECULAE])
    _paint(lab, free & (outer <= 1), Tissue.RV_MYO)
    _paint(lab, free & (inner <= 1), Tissue.RV_BLOOD)


def _sphere(x: np.ndarray, y: np.ndarray, z: np.ndarray, center: tuple, radius: float | np.ndarray) -> np.ndarray:
    return (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2 <= radius**2


def _tube(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, start: tuple, direction: tuple, radius: float, length: float
) -> np.ndarray:
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    rx, ry, rz = x - start[0], y - start[1], z - start[2]
    along = rx * d[0] + ry * d[1] + rz * d[2]
    perp2 = rx * rx + ry * ry + rz * rz - along * along
    return (along >= 0) & (along <= length) & (perp2 <= radius * radius)


AO_DIR_DEG = 75.0
ATRIAL_ELONGATION = 1.3
LA_CENTER = (-8 * np.cos(np.deg2rad(AO_DIR_DEG)), -8 * np.sin(np.deg2rad(AO_DIR_DEG)), 22.0)
RA_CENTER = (38.0, -6.0, 21.0)
AO_START = (18 * np.cos(np.deg2rad(AO_DIR_DEG)), 18 * np.sin(np.deg2rad(AO_DIR_DEG)), -1.0)
AO_DIR = (0.35 * np.cos(np.deg2rad(AO_DIR_DEG)), 0.35 * np.sin(np.deg2rad(AO_DIR_DEG)), 1.0)
PA_START = (0.0, 42.0, 0.0)
PA_DIR = (-0.15, 0.35, 1.0)


def _atria(p: HeartParams, st: HeartState, x: np.ndarray, y: np.ndarray, z: np.ndarray, lab: np.ndarray) -> None:
    """Paint both atria with walls and the interatrial septum (with an ASD or lipomatous thickening)."""
    scale = _b(st.atrial_scale) ** (1 / 3)
    la_r, ra_r = p.la_radius * scale, p.ra_radius * scale
    z = z / ATRIAL_ELONGATION  # spheres in this squashed space are ellipsoids elongated along the long axis
    la_c = (LA_CENTER[0] - (p.la_radius - 22) * 0.5, LA_CENTER[1], p.la_radius - 2 / ATRIAL_ELONGATION)
    ra_c = (RA_CENTER[0] + (p.ra_radius - 21) * 0.5, RA_CENTER[1], p.ra_radius - 2 / ATRIAL_ELONGATION)
    _paint(lab, _sphere(x, y, z, la_c, la_r + 2) | _sphere(x, y, z, ra_c, ra_r + 2), Tissue.ATRIAL_WALL)
    la = _sphere(x, y, z, la_c, la_r)
    ra = _sphere(x, y, z, ra_c, ra_r)
    _paint(lab, la, Tissue.LA_BLOOD)
    _paint(lab, ra, Tissue.RA_BLOOD)
    n = np.subtract(ra_c, la_c)
    n = n / np.linalg.norm(n)
    mid = (np.add(la_c, ra_c) + n * (float(p.la_radius) - float(p.ra_radius)) * 0.5) / 2
    dist = (x - mid[0]) * n[0] + (y - mid[1]) * n[1] + (z - mid[2]) * n[2]
    half = 2.0 + p.septum_fat / 2
    septum = (_sphere(x, y, z, la_c, la_r + 2) | _sphere(x, y, z, ra_c, ra_r + 2)) & (np.abs(dist) <= half)
    _paint(lab, septum, Tissue.FAT if p.septum_fat else Tissue.ATRIAL_WALL)
    if p.asd:
        hole = septum & _sphere(x, y, z, (mid[0], 0.0, mid[2] - 4), p.asd / 2)
        _paint(lab, hole, Tissue.RA_BLOOD)


def _vessels(p: HeartParams, x: np.ndarray, y: np.ndarray, z: np.ndarray, lab: np.ndarray) -> None:
    """Paint the aortic root (with sinus) and the pulmonary trunk above the base."""
    top = z > 0
    _paint(lab, top & _tube(x, y, z, AO_START, AO_DIR, p.ao_radius + 2, 70), Tissue.VESSEL_WALL)
    _paint(lab, top & _tube(x, y, z, PA_START, PA_DIR, p.pa_radius + 1.5, 60), Tissue.VESSEL_WALL)
    _paint(lab, top & _tube(x, y, z, AO_START, AO_DIR, p.ao_radius, 70), Tissue.AORTA)
    sinus = (AO_START[0], AO_START[1], AO_START[2] + 10)
    _paint(lab, top & _sphere(x, y, z, sinus, p.ao_radius * 1.2), Tissue.AORTA)
    _paint(lab, top & _tube(x, y, z, PA_START, PA_DIR, p.pa_radius, 60), Tissue.PA)


def _envelope(p: HeartParams, st: HeartState, x: np.ndarray, y: np.ndarray, z: np.ndarray, gap: object) -> np.ndarray:
    """Points within about ``gap`` mm outside the ventricles' epicardium (an offset of both outer surfaces)."""
    big_a, big_c = _b(st.outer_a) + gap, _b(st.outer_c) + gap
    lv = (x * x + y * y) / big_a**2 + (z / big_c) ** 2 <= 1
    ax, ay, az = (float(v) for v in p.rv_axes)
    s = _b(st.rv_scale)
    rv = ((x - p.rv_shift) / (ax * s + p.rv_wall + gap)) ** 2 + (y / (ay * s + p.rv_wall + gap)) ** 2
    rv = rv + (z / (az + p.rv_wall + gap)) ** 2 <= 1
    return (lv | rv) & (z <= 6 + gap)


def _sac(p: HeartParams, st: HeartState, x: np.ndarray, y: np.ndarray, z: np.ndarray, lab: np.ndarray) -> None:
    """Patchy epicardial fat, pericardium and (with an effusion) fluid between it and the heart."""
    theta = np.arctan2(y, x)
    patchy = 1.5 + 6 * np.clip(np.sin(3 * theta + z / 14), 0, 1) + 4 * np.clip((z + 20) / 20, 0, 1)
    _paint(lab, _envelope(p, st, x, y, z, p.effusion + p.pericardium + patchy), Tissue.FAT)
    _paint(lab, _envelope(p, st, x, y, z, p.effusion + p.pericardium), Tissue.PERICARDIUM)
    if p.effusion > 0:
        _paint(lab, _envelope(p, st, x, y, z, p.effusion), Tissue.FLUID)


def _extras(p: HeartParams, st: HeartState, x: np.ndarray, y: np.ndarray, z: np.ndarray, lab: np.ndarray) -> None:
    """Masses, thrombus, VSD and the repaired-tetralogy patch."""
    for m in p.masses:
        cz = m.center[2] + m.motion * _b(np.sin(np.pi * st.systole))
        if m.tissue == Tissue.THROMBUS:
            cz = -_b(st.c) + m.radius * 0.9
        hit = (x - m.center[0]) ** 2 + (y - m.center[1]) ** 2 + (z - cz) ** 2 <= m.radius**2
        if m.inside:
            hit &= np.isin(lab, [int(t) for t in m.inside])
        _paint(lab, hit, m.tissue)
    rho = np.sqrt(x * x + y * y)
    septal = (_sector(np.arctan2(y, x), 0, 40) > 0) & (rho > _b(st.a) - 6)
    if p.vsd:
        hole = septal & (np.abs(z + 15) <= p.vsd / 2) & (lab == Tissue.LV_MYO)
        _paint(lab, hole, Tissue.RV_BLOOD)
    if p.patch:
        band = septal & (np.abs(z + 12) <= 5) & (lab == Tissue.LV_MYO)
        _paint(lab, band, Tissue.PATCH)


def heart_labels(p: HeartParams, st: HeartState, q: np.ndarray, lab: np.ndarray) -> None:
    """Paint heart tissues into ``lab`` [F, N] (uint8, pre-filled with background) at points ``q`` [N, 3] (mm).

    ``q`` are heart-frame coordinates; the same points are evaluated at every phase of ``st``. Static shapes are
    computed once as [1, N] and broadcast; moving ones as [F, N].
    """
    x, y, z = (q[:, i].astype(np.float32)[None, :] for i in range(3))
    _sac(p, st, x, y, z, lab)
    _atria(p, st, x, y, z, lab)
    _vessels(p, x, y, z, lab)
    _lv(p, st, x, y, z, lab)
    _rv(p, st, x, y, z, lab)
    _extras(p, st, x, y, z, lab)


def ventricle_labels(p: HeartParams, st: HeartState, q: np.ndarray, lab: np.ndarray) -> None:
    """Paint only the ventricles (with their masses and defects): what the ground truth integrates."""
    x, y, z = (q[:, i].astype(np.float32)[None, :] for i in range(3))
    _lv(p, st, x, y, z, lab)
    _rv(p, st, x, y, z, lab)
    _extras(p, st, x, y, z, lab)
