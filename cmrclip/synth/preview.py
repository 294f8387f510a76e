"""A picture for people: a PNG contact sheet and an animated GIF of one written study, read back from its DICOM."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from cmrclip.errors import DataError
from cmrclip.synth.sites import SITES

__all__ = ["load_study_views", "write_preview"]

logger = logging.getLogger(__name__)


def _view_of(description: str) -> str | None:
    for site in SITES.values():
        if description in site.lax_descriptions:
            return ("2CH", "3CH", "4CH")[site.lax_descriptions.index(description)]
        head = site.sax_description.split("{")[0]
        if description == site.sax_description or (head != site.sax_description and description.startswith(head)):
            return "SAX"
    return None


def load_study_views(study_dir: Path) -> dict[str, np.ndarray]:
    """Read one study folder back: view -> float32 [S, F, H, W] scaled to [0, 1], slices ordered along the normal."""
    frames: dict[str, dict[float, list[tuple[float, np.ndarray]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(p for p in Path(study_dir).rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path)
        view = _view_of(str(ds.SeriesDescription))
        if view is None:
            continue
        normal = np.cross(
            np.array(ds.ImageOrientationPatient[:3], float), np.array(ds.ImageOrientationPatient[3:], float)
        )
        where = round(float(np.dot(np.array(ds.ImagePositionPatient, float), normal)), 2)
        frames[view][where].append((float(ds.TriggerTime), ds.pixel_array.astype(np.float32)))
    if not frames:
        raise DataError(f"no synthetic cine series found under {study_dir}; is it a study folder of `cmrclip synth`?")
    out = {}
    for view, slices in frames.items():
        stack = [np.stack([a for _, a in sorted(s, key=lambda t: t[0])]) for _, s in sorted(slices.items())]
        arr = np.stack(stack)
        out[view] = arr / max(float(np.percentile(arr, 99.5)), 1.0)
    return out


def _tile(img: np.ndarray, size: int, keep: float = 0.7) -> Image.Image:
    """The central ``keep`` fraction of the image, fitted into a ``size`` square."""
    h, w = img.shape
    dh, dw = int(h * (1 - keep) / 2), int(w * (1 - keep) / 2)
    img = img[dh : h - dh, dw : w - dw]
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    scale = size / max(pil.width, pil.height)
    pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (size, size))
    canvas.paste(pil, ((size - pil.width) // 2, (size - pil.height) // 2))
    return canvas


def write_preview(out_dir: Path, study_id: str, size: int = 160, columns: int = 6) -> tuple[Path, Path]:
    """Write ``preview.png`` (rows: 4CH, 2CH, 3CH, basal/mid/apical SAX; columns: phases) and ``preview.gif``.

    Raises:
        DataError: if the study is not in ``out_dir/dicom``.
    """
    matches = sorted(Path(out_dir, "dicom").glob(f"*/{study_id}"))
    if not matches:
        raise DataError(f"study {study_id} not found under {out_dir}/dicom; run `cmrclip synth` first")
    views = load_study_views(matches[0])
    sax = views["SAX"]
    rows = [views[v][0] for v in ("4CH", "2CH", "3CH") if v in views]
    rows += [sax[i] for i in sorted({1, len(sax) // 2, len(sax) - 2})]
    n_frames = rows[0].shape[0]
    picks = np.linspace(0, n_frames - 1, columns).round().astype(int)
    sheet = Image.new("L", (size * columns, size * len(rows)))
    for r, cine in enumerate(rows):
        for c, f in enumerate(picks):
            sheet.paste(_tile(cine[min(f, cine.shape[0] - 1)], size), (c * size, r * size))
    png, gif = Path(out_dir) / "preview.png", Path(out_dir) / "preview.gif"
    sheet.save(png)
    strip = [views[v][0] if v != "SAX" else sax[len(sax) // 2] for v in ("4CH", "2CH", "3CH", "SAX") if v in views]
    gif_frames = []
    for f in range(n_frames):
        frame = Image.new("L", (size * len(strip), size))
        for i, cine in enumerate(strip):
            frame.paste(_tile(cine[f % cine.shape[0]], size), (i * size, 0))
        gif_frames.append(frame)
    gif_frames[0].save(gif, save_all=True, append_images=gif_frames[1:], duration=60, loop=0)
    logger.info("wrote %s and %s", png, gif)
    return png, gif
