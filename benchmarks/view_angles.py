"""Long-axis rotations of real cines with known view, and of the synthetic cohort, in the frame of views.yaml.

The geometry fallback of view identification (``cmrclip.ingest.views``) names a long-axis cine by the rotation of its
plane about the long axis; ``configs/views.yaml`` holds one rotation per view. This measures it on the real LAX
cines with a known view and a SAX stack of the same subject in ``../shared/data`` (M&Ms-2 4CH), and on the
synthetic heart's planes (``cmrclip.synth.render``), so the two can be compared. Usage:

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/view_angles.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cmrclip.ingest.geometry import plane_normal
from cmrclip.ingest.nifti import read_nifti
from cmrclip.ingest.scan import FileRef
from cmrclip.ingest.views import lax_rotation_deg
from cmrclip.synth import render

REAL = {  # (SAX file, LAX file, view) of one subject
    "mnms2_subject001": ("mnms2_subject001/001_SA_ED.nii.gz", "mnms2_subject001/001_LA_CINE.nii.gz", "4CH"),
    "cinema_mnms2": ("cinema_examples/mnms2/sax_ed.nii.gz", "cinema_examples/mnms2/lax_4c_ed.nii.gz", "4CH"),
}


def real_rotation(data: Path, sax: str, lax: str) -> float:
    """The LAX plane's rotation about the long axis, with the SAX normal of the same subject."""
    normals = [plane_normal(read_nifti(FileRef(str(data / f), data / f, None)).orientation) for f in (sax, lax)]
    return lax_rotation_deg(*normals)


def synthetic_rotations(n: int = 50) -> dict[str, tuple[float, float]]:
    """Mean and SD of each synthetic long-axis plane's rotation over ``n`` random heart placements."""
    out: dict[str, list[float]] = {"4CH": [], "2CH": [], "3CH": []}
    for seed in range(n):
        ex, ey, ez = render.make_geometry(np.random.default_rng(seed)).axes.T
        u3 = np.cos(np.deg2rad(render.AO_DIR_DEG)) * ex + np.sin(np.deg2rad(render.AO_DIR_DEG)) * ey
        sax = np.cross(ex, -ey)
        for view, (row, col) in {"4CH": (-ex, ez), "2CH": (ey, ez), "3CH": (-u3, ez)}.items():
            out[view].append(lax_rotation_deg(sax, np.cross(row, col)))
    return {v: (float(np.mean(x)), float(np.std(x))) for v, x in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    for name, (sax, lax, view) in REAL.items():
        print(f"real {name} {view}: {real_rotation(args.data, sax, lax):.1f} deg")
    for view, (mean, sd) in synthetic_rotations().items():
        print(f"synthetic {view}: {mean:.1f} +- {sd:.1f} deg")


if __name__ == "__main__":
    main()
