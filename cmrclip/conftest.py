"""Session fixtures shared by every test: the real samples in ``../shared/data`` and the tiny synthetic cohort."""

from __future__ import annotations

import os
import shutil
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


def _toy_study(key: str, patient: str, label: int, rng) -> tuple:
    """A study whose pixels show a pulsing disc of a label-dependent size; the report names the size."""
    import numpy as np

    from cmrclip.ingest.store import StudyRecord, ViewData

    yy, xx = np.mgrid[:32, :32]
    views = {}
    for view, n_slices in (("SAX", 6), ("4CH", 1)):
        radius = 4 + 3 * label + np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False))[None, :, None, None]
        dist = np.hypot(yy - 16 + rng.integers(-2, 3), xx - 16 + rng.integers(-2, 3))[None, None]
        px = np.clip(200.0 * (dist < radius) + rng.normal(20, 5, (n_slices, 12, 32, 32)), 0, 255).astype(np.uint8)
        views[view] = ViewData(
            pixels=px,
            trigger_times_ms=np.tile(np.arange(12) * 70.0, (n_slices, 1)),
            positions_mm=np.stack([np.zeros(n_slices), np.zeros(n_slices), np.arange(n_slices) * 8.0], 1),
            pixel_spacing_mm=(1.5, 1.5),
            slice_thickness_mm=8.0,
            orientation=(1, 0, 0, 0, 1, 0),
            window=(0.0, 255.0),
            view_source="given",
        )
    words = ["small", "normal", "dilated", "severely dilated"][label]
    return StudyRecord(key, patient, "toy", views), f"The left ventricle is {words}. Study {key}."


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory) -> Path:
    """A tiny study store (24 studies of 12 patients, 32x32 pixels, 12 frames) with reports tied to the pixels."""
    import numpy as np

    from cmrclip.ingest.store import StudyStore

    root = tmp_path_factory.mktemp("toy_store")
    store = StudyStore.create(root)
    rng = np.random.default_rng(0)
    for i in range(24):
        record, report = _toy_study(f"{i:016x}", f"p{i // 2:015x}", i % 4, rng)
        store.write_study(record, report=report)
    return root


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A tiny synthetic cohort (8 studies, >= 2 sites, one patient with two studies, all four views, SAX masks).

    Small matrices (<= 64 px) and 6 phases, so it is written in a few seconds. Returns the output folder
    (``dicom/``, ``reports.jsonl``, ``ground_truth.csv``, ``masks/``); treat it as read-only.
    """
    from cmrclip.synth import generate_cohort

    out = tmp_path_factory.mktemp("tiny_cohort")
    sites = ["northfield", "riverside", "lakeshore", "hillcrest"]
    generate_cohort(out, n_studies=8, seed=1234, sites=sites, masks=True, matrix=64, phases=6)
    return out


@pytest.fixture(scope="session")
def tiny_store(tiny_cohort, tmp_path_factory) -> Path:
    """``tiny_cohort`` ingested into a study store, with its reports and ground-truth labels joined."""
    from cmrclip.ingest.pipeline import IngestConfig, ingest

    root = tmp_path_factory.mktemp("tiny_store")
    ingest([tiny_cohort / "dicom"], root, IngestConfig(salt="test-salt", workers=1),
           reports=tiny_cohort / "reports.jsonl", labels=tiny_cohort / "ground_truth.csv")  # fmt: skip
    return root


REQUIRE_BROWSER = "CMRCLIP_REQUIRE_BROWSER"
"""Set to 1 (``.ci/run`` does) to make a missing browser fail the browser tests instead of skipping them."""
INSTALL_HINT = "apt-get install -y chromium (Debian/Ubuntu; `make test` does it when run as root)"
_browser_skips: list[str] = []


def find_chromium() -> Path | None:
    """Chromium for the browser tests: ``$CMRCLIP_CHROMIUM``, else ``chromium`` (or ``chromium-browser``) on PATH."""
    given = os.environ.get("CMRCLIP_CHROMIUM")
    if given:
        return Path(given) if Path(given).is_file() else None
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None


def chromium_options() -> dict[str, object]:
    """Playwright launch options for the system's headless Chromium.

    Skips the calling test when no Chromium is installed, or fails it when ``CMRCLIP_REQUIRE_BROWSER=1`` (CI).
    """
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get(REQUIRE_BROWSER, "") not in ("", "0"):
            pytest.fail(f"Chromium is not installed and {REQUIRE_BROWSER} is set: {INSTALL_HINT}")
        _browser_skips.append(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
        pytest.skip(f"no Chromium: {INSTALL_HINT}")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--disable-sync", "--no-first-run"]
    return {"executable_path": str(chromium), "args": args}


def pytest_terminal_summary(terminalreporter) -> None:
    """One line at the end when browser tests were skipped for want of a browser."""
    if _browser_skips:
        n = len(_browser_skips)
        terminalreporter.write_line(f"{n} browser test(s) SKIPPED: Chromium not found; to run them: {INSTALL_HINT}")


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory):
    """A tiny CLIP checkpoint (``clip.pt``) beside a 12-patient toy store with reports."""
    import torch

    from cmrclip.models.bundle import encoder_payload
    from cmrclip.models.clip import ClipModel
    from cmrclip.models.prompts import CLIP_FORMAT
    from cmrclip.models.registry import build_video_encoder
    from cmrclip.models.text import TextConfig, TextEncoder, minilm_dir
    from cmrclip.train.finetune_test import make_toy_store

    root = tmp_path_factory.mktemp("zs")
    make_toy_store(root / "store", n_patients=12, report=True)
    video = build_video_encoder("tiny", seed=1, overrides={"input_size": [16, 32, 32], "embed_dim": 32, "proj_dim": 32})
    tcfg = TextConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, proj_dim=32,
                      tokenizer_dir=str(minilm_dir()), max_length=32)  # fmt: skip
    clip = ClipModel(video, TextEncoder(tcfg), embed_dim=32)
    body = {"format": CLIP_FORMAT, "video": encoder_payload(video), "text_config": tcfg.model_dump(mode="json"),
            "embed_dim": 32, "state_dict": clip.state_dict()}  # fmt: skip
    torch.save(body, root / "clip.pt")
    return root
