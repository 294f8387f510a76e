from __future__ import annotations

import datetime as dt
import re

import pytest

from cmrclip.text.deid import deidentify
from cmrclip.text.surrogate import Surrogates


def test_same_name_same_surrogate_within_a_study():
    text = "Patient: Noor Iyer. Dr Helena Marchetti reviewed. Noor Iyer was informed by Dr Marchetti."
    out = deidentify(text, mode="surrogate", key="patient-1").text
    assert "Noor" not in out and "Iyer" not in out and "Marchetti" not in out, out
    names = re.findall(r"Patient: (\w+ \w+)\. Dr \w+ (\w+) reviewed\. (\w+ \w+) was informed by Dr (\w+)", out)
    assert names and names[0][0] == names[0][2] and names[0][1] == names[0][3], out


@pytest.mark.parametrize(
    ("date", "parsed", "fmt"),
    [("14/03/2021", dt.date(2021, 3, 14), "%d/%m/%Y"), ("2021-03-14", dt.date(2021, 3, 14), "%Y-%m-%d"),
     ("14 March 2021", dt.date(2021, 3, 14), "%-d %B %Y")],
)  # fmt: skip
def test_dates_move_by_the_patient_offset_in_the_same_format(date, parsed, fmt):
    surrogates = Surrogates("patient-1")
    shifted = parsed - dt.timedelta(days=surrogates.offset_days)
    assert surrogates.date(date) == shifted.strftime(fmt)
    assert 30 <= surrogates.offset_days <= 365
    assert Surrogates("patient-1").offset_days == surrogates.offset_days


def test_partial_dates_and_other_kinds():
    surrogates = Surrogates("k")
    assert re.fullmatch(r"[A-Z][a-z]+ 20\d\d", surrogates.date("March 2021") or "")
    assert surrogates.date("the 3rd of May") is not None
    mrn = surrogates.replace("mrn", "AB-1234567")
    assert re.fullmatch(r"[A-Z]{2}-\d{7}", mrn) and mrn != "AB-1234567"
    assert surrogates.replace("mrn", "AB-1234567") == mrn
    assert surrogates.replace("age", "92-year-old") == "90+-year-old"


def test_surrogate_mode_keeps_findings_readable():
    text = "Seen at Kestrel Vale Cardiology on 14/03/2021 by Dr Fiona Strachan (tel 0113 496 0721). LVEF 55%."
    out = deidentify(text, mode="surrogate", key="x").text
    for gone in ("Kestrel", "14/03/2021", "Strachan", "0721"):
        assert gone not in out, out
    assert out.endswith("LVEF 55%.") and "[" not in out
