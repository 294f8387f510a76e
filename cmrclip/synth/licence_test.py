"""Licence rule: ACDC and M&Ms data (CC BY-NC-SA) are read from a path, never copied into the repository or package.

Any array, volume, archive or checkpoint file inside the package or tracked by git fails this test unless it is
listed in :data:`CC0_FILES` (Sunnybrook-derived arrays, CC0, may be shipped).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
REPO = PACKAGE.parent
DATA_SUFFIXES = (".npz", ".npy", ".nii", ".nii.gz", ".h5", ".hdf5", ".mat", ".pt", ".pth", ".tar", ".tar.xz",
                 ".tar.gz", ".zip", ".dcm", ".mha", ".mhd", ".nrrd")  # fmt: skip
CC0_FILES: frozenset[str] = frozenset()
"""Repository paths of shipped CC0 (Sunnybrook-derived) arrays."""


def _is_data(path: str) -> bool:
    return path.lower().endswith(DATA_SUFFIXES)


def test_no_acdc_or_mnms_array_inside_the_package():
    found = sorted(str(p.relative_to(REPO)) for p in PACKAGE.rglob("*") if p.is_file() and _is_data(p.name))
    assert [p for p in found if p not in CC0_FILES] == []


def test_no_array_file_tracked_in_the_repository():
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # an installed package has no git checkout
        return
    assert [p for p in tracked.splitlines() if _is_data(p) and p not in CC0_FILES] == []


def test_the_rule_sees_a_copied_pack(tmp_path):
    assert _is_data("cmrclip/data/acdc_40_patients_ed_es.tar.xz") and _is_data("x/patient061.npz")
    assert not _is_data("cmrclip/synth/realistic.py")
