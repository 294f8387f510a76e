"""The demo's hand-over: which cell is chosen, which study is zipped, how the commands are written."""

from __future__ import annotations

import json
import shlex
import sys
import zipfile

import pandas as pd
import pytest

from cmrclip import handover
from cmrclip.errors import DataError
from cmrclip.ingest.deid import hash_key


def _cell(root, name, val_mae, test_keys):
    cell = root / "finetune" / "cells" / name
    cell.mkdir(parents=True)
    (cell / "cell.json").write_text(json.dumps({"metrics": {"val_lvef_mae": val_mae, "test_lvef_mae": 1.0}}))
    (cell / "model.pt").write_bytes(name.encode())
    pd.DataFrame({"study_key": test_keys}).to_csv(cell / "predictions_test.csv", index=False)


def test_hand_over_picks_the_lowest_validation_error_and_zips_a_test_study(tmp_path):
    dicom = tmp_path / "dicom"
    for acc in ("ACC1", "ACC2"):
        (dicom / "P1" / acc / "s2").mkdir(parents=True)
        (dicom / "P1" / acc / "s2" / "im1.dcm").write_bytes(acc.encode())
    key2 = hash_key("ACC2", "salt")
    _cell(tmp_path, "pretrained/f0.5/s0", 7.0, ["0000000000000000", key2])
    _cell(tmp_path, "pretrained/f1/s0", 5.0, [key2])  # lowest validation error: chosen
    _cell(tmp_path, "random/f1/s0", 1.0, [key2])  # never a random-encoder cell
    got = handover.hand_over(tmp_path, dicom, "salt")
    assert got.cell == "pretrained/f1/s0" and "5.00" in got.reason
    assert got.model.read_bytes() == b"pretrained/f1/s0"
    with zipfile.ZipFile(got.study) as zf:
        assert zf.namelist() == ["s2/im1.dcm"] and zf.read("s2/im1.dcm") == b"ACC2"
    with pytest.raises(DataError, match="none of the test studies"):
        handover.hand_over(tmp_path, dicom, "other-salt")


def test_commands_name_the_folder_as_given_and_quote_it(tmp_path):
    h = handover.HandOver(tmp_path / "model.pt", tmp_path / "demo_study.zip", "pretrained/f1/s0", "")
    lines = handover.next_commands(h, tmp_path.parent / "my runs" / tmp_path.name, ".venv/bin/cmrclip")
    words = [shlex.split(line, comments=True) for line in lines]
    assert [w[:2] for w in words] == [[".venv/bin/cmrclip", c] for c in ("predict", "explain", "serve")]
    assert words[0][2].endswith("my runs/" + tmp_path.name + "/demo_study.zip")


def test_program_name(monkeypatch):
    monkeypatch.setattr(sys, "argv", [".venv/bin/cmrclip", "demo"])
    monkeypatch.setattr(handover.shutil, "which", lambda name: None)
    assert handover.program_name() == ".venv/bin/cmrclip"  # `make demo`: not on PATH, so the path it ran by
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest"])
    assert handover.program_name() == "cmrclip"
