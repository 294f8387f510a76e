"""Session fixtures shared by every test: the real samples in ``../shared/data`` and the tiny synthetic cohort."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real cardiac MRI samples: ``$CMRCLIP_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    root = Path(os.environ.get("CMRCLIP_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (root / "MANIFEST.md").is_file():
        pytest.fail(f"shared data not found at {root}; set CMRCLIP_SHARED_DATA to the folder holding MANIFEST.md")
    return root
