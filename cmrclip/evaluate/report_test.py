from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest

from cmrclip.conftest import chromium_options
from cmrclip.errors import DataError
from cmrclip.evaluate.report import ReportImage, ReportSection, build_html_report

# a 2x1 red/blue PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDAAAAGAQH/t4lWVQAAAABJRU5ErkJggg=="
)


def test_report_is_self_contained_and_escaped(tmp_path):
    (tmp_path / "fig.png").write_bytes(PNG)
    out = build_html_report(
        "Title <script>",
        [
            ReportSection("Text", text="line <b>one</b>\n\nsecond", table=pd.DataFrame({"a": [1.5, float("nan")]})),
            {"title": "Images", "images": [tmp_path / "fig.png", ReportImage(PNG, caption="bytes")]},
            ReportSection("Config", code="alpha: 0.05"),
        ],
        tmp_path / "r" / "report.html",
    )
    page = out.read_text()
    assert "<script" not in page and "&lt;b&gt;one&lt;/b&gt;" in page
    assert page.count('src="data:image/png;base64,') == 2
    assert "http" not in page.replace("http-equiv", "")


def test_report_bad_images(tmp_path):
    with pytest.raises(DataError, match="cannot be read"):
        build_html_report("t", [ReportSection("s", images=[tmp_path / "missing.png"])], tmp_path / "x.html")
    with pytest.raises(DataError, match="not PNG"):
        build_html_report("t", [ReportSection("s", images=[b"hello"])], tmp_path / "x.html")
    with pytest.raises(DataError, match="unexpected keyword"):
        build_html_report("t", [{"title": "s", "colour": "red"}], tmp_path / "x.html")


def open_in_chromium(path: Path) -> tuple[list[str], list[int]]:
    """Open an HTML file in headless Chromium; return console errors/page errors and every image's naturalWidth."""
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(**chromium_options())
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.goto(path.resolve().as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        finally:
            browser.close()
    return errors, widths


@pytest.mark.slow
def test_report_opens_in_chromium_with_images(tmp_path):
    (tmp_path / "fig.png").write_bytes(PNG)
    out = build_html_report(
        "browser check", [ReportSection("imgs", images=[tmp_path / "fig.png", PNG])], tmp_path / "report.html"
    )
    errors, widths = open_in_chromium(out)
    assert errors == []
    assert widths == [2, 2]
