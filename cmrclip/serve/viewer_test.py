"""The viewer in real headless Chromium (Debian's ``chromium``, driven by Playwright): upload a synthetic study's
DICOM zip, see the results, overlays, volumes and contours (a stand-in threshold segmenter), no console errors.
"""

import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest
import uvicorn

from cmrclip.conftest import chromium_options
from cmrclip.serve.api import create_app
from cmrclip.serve.predict import Model
from cmrclip.serve.volumes import LVEF_MARGIN_POINTS

# set CMRCLIP_VIEWER_SCREENSHOT=docs/images/viewer.png to refresh the README's picture
SCREENSHOT = os.environ.get("CMRCLIP_VIEWER_SCREENSHOT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_model, threshold_segmenter, tmp_path):
    work_root = tmp_path / "requests"
    app = create_app(model=Model(tiny_model.parts, segmenter=threshold_segmenter), work_root=work_root)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", work_root
    srv.should_exit = True
    thread.join(timeout=10)


def _zip_folder(folder: Path, target: Path) -> Path:
    """Zip every file under ``folder`` (paths relative to it), as a user would send one study's DICOM folder."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(folder).as_posix())
    return target


@pytest.fixture(scope="module")
def synthetic_study(tiny_cohort, tmp_path_factory) -> tuple[Path, str]:
    """One study of the synthetic cohort (``dicom/<PatientID>/<AccessionNumber>/...``) as a zip, and its ID."""
    folder = sorted(p for p in (tiny_cohort / "dicom").glob("*/*") if p.is_dir())[0]
    return _zip_folder(folder, tmp_path_factory.mktemp("viewer") / "study.zip"), folder.name


@pytest.mark.slow
def test_viewer_shows_a_synthetic_study_with_overlays(server, synthetic_study, tmp_path):
    from playwright.sync_api import sync_playwright

    url, work_root = server
    study, accession = synthetic_study
    with zipfile.ZipFile(study) as zf:
        assert len(zf.namelist()) > 20 and all(n.endswith(".dcm") for n in zf.namelist())
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_options())
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
        page.on("request", lambda r: None if r.url.startswith((url, "data:")) else problems.append(r.url))
        page.goto(url + "/")
        page.set_input_files("#study-file", str(study))
        page.click("#submit")
        page.wait_for_selector("#results:not([hidden])", timeout=120_000)
        assert page.text_content("#lvef-value").endswith("%")
        assert "90 % interval" in page.text_content("#lvef-interval")
        assert page.locator("#conditions tbody tr").count() == 39
        # the synthetic cohort has all four views; each is shown as cine clips with two overlays
        assert "SAX, 2CH, 3CH, 4CH" in page.text_content("#views-used")
        n_clips = page.locator("#clips .clip").count()
        assert n_clips >= 4
        assert f"({n_clips} clips)" in page.text_content("#views-used")
        assert page.text_content("#views-used").startswith(f"{study.name}: ")  # the input, as the user gave it
        captions = " ".join(page.locator("#clips .clip").all_text_contents())
        assert all(view in captions for view in ("SAX", "2CH", "3CH", "4CH"))
        sizes = page.eval_on_selector_all("#clips img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert len(sizes) == 2 * n_clips and all(w > 0 for w in sizes)
        # with a segmenter: the volumetric LVEF beside the regression, the volumes, and contours on every SAX slice
        assert page.text_content("#lvef-volumetric").startswith("Volumetric (contours): ")
        assert page.text_content("#lvef-volumetric").endswith(" %")
        assert page.locator("#volumes tbody tr").count() == 9
        assert "EDV" in page.text_content("#volumes") and " mL" in page.text_content("#volumes")
        n_slices = page.locator("#contours .clip").count()
        assert n_slices >= 5
        sizes = page.eval_on_selector_all("#contours img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert len(sizes) == n_slices and all(w > 0 for w in sizes)
        regression = float(page.text_content("#lvef-value").removesuffix(" %"))
        volumetric = float(page.text_content("#lvef-volumetric").split(": ")[1].removesuffix(" %"))
        assert page.is_visible("#lvef-disagreement") == (abs(regression - volumetric) > LVEF_MARGIN_POINTS)
        if page.is_visible("#lvef-disagreement"):
            assert "check the contours" in page.text_content("#lvef-disagreement")
        assert accession not in page.content()  # the page shows no identifier of the study
        page.screenshot(path=SCREENSHOT or str(tmp_path / "viewer.png"), full_page=True)
        # an unacceptable upload is shown as an error, and the page keeps working
        junk = tmp_path / "junk.zip"
        junk.write_bytes(b"not a study at all")
        page.set_input_files("#study-file", str(junk))
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])")
        assert "422" in page.text_content("#error")
        browser.close()
    problems = [m for m in problems if "422" not in m]  # the browser logs the refused upload's status
    assert problems == []
    assert not any(work_root.iterdir())
