"""Exact ground truth: integrate the ventricles' labels of the heart model on a fine grid at ED and ES."""

from __future__ import annotations

import logging

import numpy as np

from cmrclip.synth.anatomy import HeartParams, HeartState, Tissue, heart_state, ventricle_labels, volume_curve

__all__ = ["measure_heart"]

logger = logging.getLogger(__name__)


def _take(st: HeartState, idx: list[int]) -> HeartState:
    return HeartState(*(np.asarray(getattr(st, f))[idx] for f in HeartState.__dataclass_fields__))


def measure_heart(p: HeartParams, n_phases: int, step: float = 1.0) -> dict[str, float]:
    """Integrate the ventricles' labels on a ``step``-mm grid at ED and ES: the exact ground truth.

    Returns:
        ``lvedv_ml``, ``lvesv_ml``, ``lv_mass_g`` (1.05 g/ml at ED), ``rvedv_ml``, ``rvesv_ml``, ``lvef``, ``rvef``.
    """
    st = heart_state(p, n_phases)
    _, _, k_es = volume_curve(n_phases, p.es_fraction)
    two = _take(st, [0, k_es])
    reach = float(st.outer_a[0]) + p.septal_extra + p.aneurysm + 6
    depth = max(float(st.outer_c[0]), p.rv_axes[2] + p.rv_wall) + p.aneurysm * 2 + 6
    xs = np.arange(-reach, p.rv_shift + p.rv_axes[0] + p.rv_wall + p.rv_bulge + 6, step)
    ys = np.arange(-max(reach, p.rv_axes[1] + 10), max(reach, p.rv_axes[1] + 10), step)
    zs = -np.arange(step / 2, depth, step)
    counts = np.zeros((2, 256), dtype=np.int64)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    for z0 in range(0, len(zs), 8):
        zz = zs[z0 : z0 + 8]
        q = np.stack(
            [np.repeat(gx[None], len(zz), 0), np.repeat(gy[None], len(zz), 0), zz[:, None, None] + 0 * gx[None]]
        )
        q = q.reshape(3, -1).T
        lab = np.zeros((2, q.shape[0]), dtype=np.uint8)
        ventricle_labels(p, two, q, lab)
        for i in range(2):
            counts[i] += np.bincount(lab[i], minlength=256)
    ml = step**3 / 1000.0
    lv = counts[:, Tissue.LV_BLOOD] * ml
    rv = counts[:, Tissue.RV_BLOOD] * ml
    myo = (counts[0, Tissue.LV_MYO] + counts[0, Tissue.TRABECULAE]) * ml
    return {
        "lvedv_ml": float(lv[0]),
        "lvesv_ml": float(lv[1]),
        "lv_mass_g": float(myo * 1.05),
        "rvedv_ml": float(rv[0]),
        "rvesv_ml": float(rv[1]),
        "lvef": float(100 * (lv[0] - lv[1]) / lv[0]),
        "rvef": float(100 * (rv[0] - rv[1]) / rv[0]),
    }
