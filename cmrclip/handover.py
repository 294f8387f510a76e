"""What the demo hands over: a ready model, a study to try it on, and the commands to run next.

The model is the pretrained fine-tuned cell of the data-efficiency grid with the lowest validation LVEF error (chosen
on the validation split, never on the test split), copied to ``OUT/model.pt``. The study is one of that cell's test
studies, zipped from the synthetic cohort's DICOM files to ``OUT/demo_study.zip`` as a user would bring one.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cmrclip.errors import DataError
from cmrclip.ingest.deid import hash_key

__all__ = ["HandOver", "hand_over", "next_commands", "program_name"]


@dataclass(frozen=True)
class HandOver:
    """The demo's ready model and study, and how the model was chosen."""

    model: Path
    study: Path
    cell: str
    reason: str


def _best_cell(cells: Path) -> tuple[Path, float]:
    """The pretrained cell with the lowest validation LVEF MAE (ties: the first in name order)."""
    scored = []
    for info in sorted(cells.glob("pretrained/*/*/cell.json")):
        mae = json.loads(info.read_text(encoding="utf-8")).get("metrics", {}).get("val_lvef_mae", math.nan)
        if (info.parent / "model.pt").is_file() and math.isfinite(mae):
            scored.append((mae, str(info.parent), info.parent))
    if not scored:
        raise DataError(f"no pretrained cell with a model and a validation LVEF error under {cells}")
    mae, _, cell = min(scored)
    return cell, mae


def _zip_test_study(cell: Path, dicom: Path, salt: str, target: Path) -> Path:
    """Zip the DICOM folder (``dicom/<patient>/<accession>/``) of the cell's first test study."""
    keys = pd.read_csv(cell / "predictions_test.csv", dtype={"study_key": str})["study_key"].tolist()
    folders = {hash_key(f.name, salt): f for f in sorted(dicom.glob("*/*")) if f.is_dir()}
    key = next((k for k in keys if k in folders), None)
    if key is None:
        raise DataError(f"none of the test studies of {cell} is a folder of {dicom}")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folders[key].rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(folders[key]).as_posix())
    return target


def hand_over(out: Path, dicom: Path, salt: str) -> HandOver:
    """Copy the best pretrained cell's model to ``out/model.pt`` and zip one of its test studies.

    Args:
        out: The demo folder (``finetune/cells/`` inside it).
        dicom: The cohort's DICOM folder.
        salt: The salt the demo's store keys were made with.

    Raises:
        DataError: if no pretrained cell has a model, or no test study is found in ``dicom``.
    """
    cell, mae = _best_cell(out / "finetune" / "cells")
    model = out / "model.pt"
    shutil.copyfile(cell / "model.pt", model)
    study = _zip_test_study(cell, dicom, salt, out / "demo_study.zip")
    name = cell.relative_to(out / "finetune" / "cells").as_posix()
    reason = f"lowest validation LVEF MAE ({mae:.2f} points) among the pretrained cells"
    return HandOver(model, study, name, reason)


def program_name() -> str:
    """How to call this ``cmrclip`` again: ``cmrclip`` when that is on PATH, else the path it was started by."""
    started = Path(sys.argv[0])
    on_path = shutil.which("cmrclip")
    if started.name != "cmrclip" or (on_path and Path(on_path).resolve() == started.resolve()):
        return "cmrclip"
    return str(started)


def next_commands(handover: HandOver, shown_out: Path, program: str = "cmrclip") -> list[str]:
    """The commands to try next, with the demo folder written as the user gave it (``shown_out``)."""
    model, study = shown_out / handover.model.name, shown_out / handover.study.name
    q = shlex.quote
    return [
        f"{program} predict {q(str(study))} --model {q(str(model))} --out {q(str(shown_out / 'predictions.jsonl'))}",
        f"{program} explain {q(str(study))} --model {q(str(model))} --out {q(str(shown_out / 'explain'))}",
        f"{program} serve --model {q(str(model))}   # then open http://127.0.0.1:8000/ and upload {study.name}",
    ]
