"""The README's attention-map picture, from a finished demo folder (`cmrclip demo --out DEMO_DIR`).

Loads the demo's fine-tuned study model (DEMO_DIR/finetune/cells/pretrained/f<largest fraction>/s0/model.pt), picks a
synthetic study of that cell's held-out test split (its DICOM folder under DEMO_DIR/cohort/dicom, matched through the
demo's salted study keys), runs the library's explain (attention rollout through the MViT blocks, MIL weight per
clip) and draws a contact sheet: one row per clip (each long-axis view and a few SAX slices), columns = frames over
the cardiac cycle, the rollout overlaid on the cine. Prints one JSON line with what it used.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/readme_images.py /tmp/demo_tiny --out docs/images/attention.png
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger(__name__)


def _pick_cell(demo: Path) -> Path:
    """The pretrained-initialised cell with the largest label fraction (seed 0)."""
    cells = list((demo / "finetune" / "cells" / "pretrained").glob("f*/s0/model.pt"))
    if not cells:
        raise SystemExit(f"no fine-tuned model under {demo}/finetune/cells/pretrained; run `cmrclip demo --out {demo}`")
    return max(cells, key=lambda p: float(p.parent.parent.name[1:])).parent


def _pick_study(demo: Path, cell: Path) -> tuple[Path, dict[str, str] | None]:
    """A study folder of the cell's test split (first in key order) and its row of predictions_test.csv."""
    from cmrclip.ingest.deid import hash_key

    seed = (yaml.safe_load((demo / "config.resolved.yaml").read_text()) or {}).get("seed", 0)
    with (cell / "predictions_test.csv").open(newline="") as fh:
        rows = {row["study_key"]: row for row in csv.DictReader(fh)}
    folders = sorted(p for p in (demo / "cohort" / "dicom").glob("*/*") if p.is_dir())
    by_key = {hash_key(p.name, f"cmrclip-demo-{seed}"): p for p in folders}  # the demo's ingest salt
    for key in sorted(rows):
        if key in by_key:
            return by_key[key], rows[key]
    logger.warning("no test-split study matched the demo's keys; using the first study (it may have been trained on)")
    return folders[0], None


def _rows(clips: list, n_sax: int) -> list:
    """Each long-axis clip, then ``n_sax`` SAX slices spread from base to apex."""
    lax = [c for c in clips if c.view != "SAX"]
    sax = sorted((c for c in clips if c.view == "SAX"), key=lambda c: c.slice_index)
    if sax:
        sax = [sax[i] for i in sorted({round(x) for x in np.linspace(0, len(sax) - 1, min(n_sax, len(sax)))})]
    order = {"4CH": 0, "2CH": 1, "3CH": 2}
    return sorted(lax, key=lambda c: order.get(c.view, 9)) + sax


def draw_sheet(clips: list, n_cols: int, title: str, out: Path) -> None:
    """Contact sheet: a plain first frame, then ``n_cols`` frames with the rollout overlaid; one row per clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_frames = clips[0].frames.shape[0]
    cols = np.unique(np.linspace(0, n_frames - 1, n_cols).round().astype(int))
    fig, axes = plt.subplots(len(clips), len(cols) + 1, figsize=(1.25 * (len(cols) + 1) + 0.9, 1.3 * len(clips) + 0.7))
    axes = np.atleast_2d(axes)
    for r, clip in enumerate(clips):
        name = clip.view + (f" slice {clip.slice_index}" if clip.view == "SAX" else "")
        axes[r, 0].imshow(clip.frames[0], cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_ylabel(f"{name}\nMIL weight {clip.mil_weight:.3f}", fontsize=8)
        for c, t in enumerate(cols, start=1):
            heat = clip.rollout[t]
            axes[r, c].imshow(clip.frames[t], cmap="gray", vmin=0, vmax=255)
            axes[r, c].imshow(heat, cmap="inferno", vmin=0, vmax=1, alpha=0.6 * heat)
            if r == 0:
                axes[r, c].set_title(f"frame {t + 1}/{n_frames}", fontsize=7)
    axes[0, 0].set_title("cine", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, format="png")
    plt.close(fig)
    Image.open(buf).convert("RGB").quantize(colors=256).save(out, optimize=True)  # a palette PNG: ~4x smaller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo_dir", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "attention.png")
    parser.add_argument("--frames", type=int, default=8, help="columns: frames over the cycle")
    parser.add_argument("--sax", type=int, default=3, help="SAX slices shown (rows)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from cmrclip.serve.explain import explain_study
    from cmrclip.serve.predict import load_model

    cell = _pick_cell(args.demo_dir)
    folder, truth = _pick_study(args.demo_dir, cell)
    model = load_model(cell / "model.pt")
    study = model.load_study(folder)
    pred = model.predict(study)
    clips = _rows(explain_study(model, study), args.sax)
    held_out = "held-out test" if truth else "training?"
    lvef = f"LVEF predicted {pred.lvef.value:.1f} %" if pred.lvef else "no LVEF output"
    if truth and truth.get("lvef"):
        lvef += f", true {float(truth['lvef']):.1f} %"
    title = (
        f"Attention rollout, {cell.relative_to(args.demo_dir)} of `cmrclip demo` on a {held_out} synthetic study "
        f"({lvef}); row label = clip's MIL weight"
    )
    draw_sheet(clips, args.frames, title, args.out)
    weights = {f"{c.view}/{c.slice_index}": round(c.mil_weight, 4) for c in clips}
    summary = {"model": str(cell / "model.pt"), "held_out": bool(truth), "mil_weights": weights, "out": str(args.out)}
    summary |= {"lvef": pred.lvef and pred.lvef.value, "lvef_true": truth and truth.get("lvef")}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
