"""Cut cine planes (SAX stack, 2CH, 3CH, 4CH) out of the 3D+time model and turn labels into bSSFP-like images."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from cmrclip.synth.anatomy import AO_DIR_DEG, HeartParams, HeartState, Tissue, heart_labels
from cmrclip.synth.artefacts import overlay
from cmrclip.synth.sites import Site

__all__ = ["Geometry", "Plane", "body_labels", "make_geometry", "plan_views", "render_image", "render_labels"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Geometry:
    """Where the heart sits in the patient (LPS, mm): heart-frame axes as columns of ``axes`` and ``origin``."""

    axes: np.ndarray
    origin: np.ndarray
    body: np.ndarray

    def to_heart(self, points: np.ndarray) -> np.ndarray:
        """Patient coordinates [..., 3] -> heart coordinates [..., 3]."""
        return (points - self.origin) @ self.axes


@dataclass(frozen=True)
class Plane:
    """One imaging plane: ``position`` is the centre of the first pixel (DICOM ImagePositionPatient)."""

    position: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    rows: int
    cols: int
    spacing: float
    thickness: float

    @property
    def normal(self) -> np.ndarray:
        """Unit normal (row x column)."""
        return np.cross(self.row_dir, self.col_dir)

    def points(self) -> np.ndarray:
        """Patient coordinates of every pixel centre, [rows, cols, 3]."""
        r = np.arange(self.rows)[:, None, None] * self.spacing * self.col_dir
        c = np.arange(self.cols)[None, :, None] * self.spacing * self.row_dir
        return self.position + r + c


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


HEART_ROLL_DEG = 85.0
"""Roll of the heart about its long axis from "+y anterior". It puts the 4CH plane at a rotation of ~159 deg about
the long axis (``configs/views.yaml``), where the real M&Ms-2 4CH cines are (158.4 and 159.6 deg, measured by
``benchmarks/view_angles.py``), with the RV anterior to the LV."""


def make_geometry(rng: np.random.Generator) -> Geometry:
    """Place the heart in the chest with a plausible, slightly varying orientation."""
    base_dir = _unit(np.array([-0.6, 0.5, 0.6]) + rng.normal(0, 0.08, 3))
    anterior = np.array([0.0, -1.0, 0.0])
    y0 = _unit(anterior - anterior @ base_dir * base_dir)
    x0 = np.cross(y0, base_dir)
    roll = np.deg2rad(HEART_ROLL_DEG)  # the septum/RV (+x) turns anterior, as in real chests
    e_x = np.cos(roll) * x0 + np.sin(roll) * y0
    e_y = np.cross(base_dir, e_x)
    body = np.array([0.0, 0.0, 0.0]) + rng.normal(0, 5, 3)
    origin = body + np.array([15.0, -20.0, 10.0]) + rng.normal(0, 4, 3)
    return Geometry(np.stack([e_x, e_y, base_dir], axis=1), origin, body)


def _plane(center: np.ndarray, row: np.ndarray, col: np.ndarray, site: Site, thickness: float) -> Plane:
    spacing = site.fov_mm / max(site.rows, site.cols)
    pos = center - row * spacing * (site.cols - 1) / 2 - col * spacing * (site.rows - 1) / 2
    return Plane(pos, _unit(row), _unit(col), site.rows, site.cols, spacing, thickness)


def plan_views(p: HeartParams, st: HeartState, geo: Geometry, site: Site) -> dict[str, list[Plane]]:
    """Plan the SAX stack (base to apex, slabs edge-aligned with the mitral plane) and the three long-axis planes.

    The slice spacing is the site's thickness + gap, widened when needed so that 8-14 slices cover the LV.
    """
    ex, ey, ez = geo.axes.T
    depth = float(st.c[0]) + p.aneurysm + 4
    spacing = max(site.slice_thickness + site.slice_gap, depth / 13)
    n = int(np.clip(np.ceil(depth / spacing), 8, 14))
    offsets = [-(i + 0.5) * spacing for i in range(n)]
    if site.basal_extra:
        offsets = [0.5 * spacing, *offsets[:13]]
    thick = min(site.slice_thickness, spacing)
    sax = [_plane(geo.origin + ez * z + ex * 15, ex, -ey, site, thick) for z in offsets]
    mid = geo.origin - ez * float(st.c[0]) * 0.3
    u3 = np.cos(np.deg2rad(AO_DIR_DEG)) * ex + np.sin(np.deg2rad(AO_DIR_DEG)) * ey
    return {
        "SAX": sax,
        "4CH": [_plane(mid + ex * 15, -ex, ez, site, site.slice_thickness)],
        "2CH": [_plane(mid, ey, ez, site, site.slice_thickness)],
        "3CH": [_plane(mid + u3 * 5, -u3, ez, site, site.slice_thickness)],
    }


def body_labels(points: np.ndarray, geo: Geometry) -> np.ndarray:
    """Static background labels (air, subcutaneous fat, chest wall, lungs, liver, spine, sternum, descending aorta)."""
    u = points - geo.body
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    lab = np.full(x.shape, Tissue.AIR, dtype=np.uint8)
    lab[(x / 165) ** 2 + (y / 118) ** 2 <= 1] = Tissue.FAT
    lab[(x / 150) ** 2 + (y / 104) ** 2 <= 1] = Tissue.BODY
    lab[(x / 132) ** 2 + ((y - 6) / 88) ** 2 <= 1] = Tissue.LUNG
    lab[((x + 68) / 60) ** 2 + ((y - 8) / 80) ** 2 + ((z - 30) / 140) ** 2 <= 1] = Tissue.LUNG
    lab[((x - 74) / 56) ** 2 + ((y - 12) / 76) ** 2 + ((z - 30) / 140) ** 2 <= 1] = Tissue.LUNG
    lab[((x + 45) / 125) ** 2 + (y / 95) ** 2 + ((z + 150) / 95) ** 2 <= 1] = Tissue.LIVER
    lab[(x / 22) ** 2 + ((y - 82) / 20) ** 2 <= 1] = Tissue.BONE
    lab[((x - 22) / 12) ** 2 + ((y - 52) / 12) ** 2 <= 1] = Tissue.AORTA
    lab[(x / 14) ** 2 + ((y + 100) / 6) ** 2 <= 1] = Tissue.BONE
    return lab


def _candidates(q: np.ndarray) -> np.ndarray:
    """Flat indices of the points near enough to the heart to need the heart model."""
    d2 = (q[:, 0] - 12) ** 2 + q[:, 1] ** 2 + ((q[:, 2] + 20) / 1.25) ** 2
    return np.flatnonzero(d2 <= 125.0**2)


def render_labels(p: HeartParams, st: HeartState, geo: Geometry, plane: Plane) -> np.ndarray:
    """Anatomical labels of one plane at every phase: uint8 [F, rows, cols]."""
    pts = plane.points()
    static = body_labels(pts, geo).reshape(-1)
    n_phases = len(st.phase)
    lab = np.broadcast_to(static, (n_phases, static.size)).copy()
    q = geo.to_heart(pts.reshape(-1, 3))
    idx = _candidates(q)
    if idx.size:
        sub = lab[:, idx]
        heart_labels(p, st, q[idx], sub)
        lab[:, idx] = sub
    return lab.reshape(n_phases, plane.rows, plane.cols)


CONTRAST = {
    Tissue.AIR: 0.0, Tissue.BODY: 0.28, Tissue.FAT: 0.80, Tissue.LUNG: 0.04, Tissue.LIVER: 0.32, Tissue.BONE: 0.35,
    Tissue.LV_BLOOD: 0.92, Tissue.LV_MYO: 0.26, Tissue.RV_BLOOD: 0.90, Tissue.RV_MYO: 0.27, Tissue.LA_BLOOD: 0.88,
    Tissue.RA_BLOOD: 0.87, Tissue.ATRIAL_WALL: 0.3, Tissue.AORTA: 0.9, Tissue.PA: 0.88, Tissue.VESSEL_WALL: 0.3,
    Tissue.PERICARDIUM: 0.08, Tissue.FLUID: 1.0, Tissue.MASS: 0.55, Tissue.THROMBUS: 0.18, Tissue.PATCH: 0.1,
    Tissue.TRABECULAE: 0.3,
}  # fmt: skip


def _lut(site: Site, rng: np.random.Generator) -> np.ndarray:
    lut = np.zeros(256, dtype=np.float32)
    for tissue, value in CONTRAST.items():
        lut[int(tissue)] = value
    blood = [Tissue.LV_BLOOD, Tissue.RV_BLOOD, Tissue.LA_BLOOD, Tissue.RA_BLOOD, Tissue.AORTA, Tissue.PA]
    lut[blood] *= site.blood / 0.92 * rng.uniform(0.95, 1.05)
    lut[[Tissue.LV_MYO, Tissue.RV_MYO, Tissue.TRABECULAE]] *= site.myocardium / 0.26 * rng.uniform(0.9, 1.1)
    lut[Tissue.FAT] = site.fat * rng.uniform(0.92, 1.05)
    return lut


def _bias(plane: Plane, strength: float, rng: np.random.Generator) -> np.ndarray:
    r = np.linspace(-1, 1, plane.rows, dtype=np.float32)[:, None]
    c = np.linspace(-1, 1, plane.cols, dtype=np.float32)[None, :]
    cx, cy = rng.uniform(-0.6, 0.6, 2)
    field = np.exp(-((c - cx) ** 2 + (r - cy) ** 2) / 1.4)
    return (1 - strength) + strength * field / field.max()


def render_image(
    labels: np.ndarray,
    plane: Plane,
    p: HeartParams,
    st: HeartState,
    geo: Geometry,
    site: Site,
    rng: np.random.Generator,
) -> np.ndarray:
    """bSSFP-like magnitude image uint16 [F, rows, cols]: contrast, flow/metal artefacts, blur, bias, ghosts, noise."""
    img = _lut(site, rng)[labels]
    img *= overlay(plane.points(), labels, p, st, geo)
    img = gaussian_filter(img, sigma=(0, 0.7, 0.7))
    img *= _bias(plane, site.bias, rng)
    if site.ghost:
        # respiratory/cardiac ghosting: faint copies shifted along the phase-encoding (column) direction
        shift = plane.rows // int(rng.integers(2, 5))
        img += site.ghost * (np.roll(img, shift, axis=1) + np.roll(img, -shift, axis=1)) / 2
    sigma = np.float32(site.blood / site.snr)
    real = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(img.shape, dtype=np.float32)
    mag = np.sqrt(real * real + imag * imag)
    return np.clip(np.rint(mag * site.max_value * 0.8), 0, site.max_value).astype(np.uint16)
