from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from cmrclip.text.deid import deidentify, scrub_report
from cmrclip.text.labeler import label_report

GOLD = Path(__file__).parent / "testdata" / "reports_gold.jsonl"
FIRST = ["John", "Maria", "Wei", "Fatima", "Oluwaseun", "Siobhan", "Rajesh", "Anna", "Carlos", "Yuki"]
LAST = ["Smith", "Gonzalez", "Zhang", "Al-Sayed", "Adeyemi", "O'Brien", "Patel", "Kowalski", "Moreno", "Tanaka"]
DOCTORS = [("Emily", "Chen"), ("Robert", "Jones"), ("Priya", "Raman"), ("Thomas", "Mueller"), ("Grace", "Okafor")]
INSTITUTIONS = [
    "Mercy General Hospital",
    "St. Luke's Medical Center",
    "Riverside Heart Institute",
    "University of Northfield Hospital",
    "Lakeshore Children's Hospital",
    "Hillcrest Cardiology Clinic",
]
DATES = ["03/14/2021", "2021-03-14", "14 March 2021", "March 14, 2021", "14.03.2021", "Sept 2020", "1/2/98"]
PHONES = ["(217) 555-0142", "555-867-5309", "+1 415 555 0199", "617.555.0123"]
ADDRESSES = ["1200 Oak Grove Avenue, Springfield, IL 62704", "250 Euston Road, London NW1 2PG", "44 Elm St"]
GENERIC = {"Street", "Avenue", "Road", "Hospital", "Medical", "Center", "Clinic", "Heart", "Institute", "Cardiology"}
MEASUREMENT = re.compile(r"\d+(?:\.\d+)?\s*(?:%|mL/m2|ml/m2|mL|ml|mm|cm2|cm|g|m/s)(?![a-z])")


def planted(i: int, text: str) -> tuple[str, dict[str, list[str]]]:
    """The report with a header, a comparison sentence and a signature full of identifiers of every kind."""
    first, last = FIRST[i % len(FIRST)], LAST[(i * 3) % len(LAST)]
    doc_first, doc_last = DOCTORS[i % len(DOCTORS)]
    mrn, acc = f"{4000000 + 7919 * i}", f"CMR{2021 + i % 3}-{1000 + i:05d}"
    inst, inst2 = INSTITUTIONS[i % 6], INSTITUTIONS[(i + 2) % 6]
    date, date2, dob = DATES[i % 7], DATES[(i + 3) % 7], DATES[(i + 5) % 7]
    phone, address, email = PHONES[i % 4], ADDRESSES[i % 3], f"{doc_first.lower()}.{doc_last.lower()}@mercy.org"
    headers = [
        f"Patient: {first} {last}    MRN: {mrn}    DOB: {dob}\nAccession: {acc}    Exam date: {date}\n",
        f"NAME: {last.upper()}, {first.upper()}\nMRN {mrn}\nACC # {acc}\nDate of birth: {dob}\n",
        f"Pt: {last}, {first} Q.  Hospital number: {mrn}  D.O.B. {dob}  Accession number: {acc}\n",
    ]
    signatures = [
        f"\nElectronically signed by: Dr. {doc_first} {doc_last}, MD on {date} at 14:32.",
        f"\nReported by Dr {doc_first} {doc_last}, consultant cardiologist. Tel: {phone}",
        f"\nDictated by: {doc_first} {doc_last}, MD, PhD. Contact {email} or {phone}.",
    ]
    where = f"\nCardiology Department, {inst}, {address}. Phone {phone}."
    comparison = f"Comparison is made with the study of {date2} performed at {inst2}.\n"
    out = headers[i % 3] + comparison + text + signatures[i % 3] + where
    kinds = {
        "name": [first, last, doc_first, doc_last],
        "mrn": [mrn],
        "accession": [acc],
        "date": [date, date2, dob],
        "phone": [phone],
        "address": [address],
        "institution": [inst, inst2],
    }
    if "@" in out:
        kinds["email"] = [email]
    return out, kinds


def leaks(text: str, kinds: dict[str, list[str]]) -> list[str]:
    found = []
    for kind, values in kinds.items():
        for value in values:
            parts = re.findall(r"[A-Za-z0-9'-]{3,}", value) if kind in ("address", "institution") else [value]
            for part in parts:
                if part in GENERIC or (part.isdigit() and len(part) < 3):
                    continue
                if re.search(rf"(?<![\w]){re.escape(part)}(?![\w])", text, re.IGNORECASE):
                    found.append(f"{kind}: {part}")
    return found


def test_planted_identifiers_of_every_kind_are_removed_and_findings_kept():
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]
    planted_counts: Counter[str] = Counter()
    for i, row in enumerate(rows):
        text, kinds = planted(i, row["text"])
        result = deidentify(text)
        planted_counts.update({k: len(v) for k, v in kinds.items()})
        assert not leaks(result.text, kinds), (row["id"], leaks(result.text, kinds), result.text)
        original = label_report(row["text"])
        scrubbed = label_report(result.text)
        assert scrubbed.labels == original.labels, row["id"]
        assert scrubbed.lvef == original.lvef, row["id"]
        assert Counter(MEASUREMENT.findall(result.text)) >= Counter(MEASUREMENT.findall(row["text"])), row["id"]
    assert set(planted_counts) == {"name", "mrn", "accession", "date", "phone", "address", "institution", "email"}


def test_gold_reports_without_identifiers_are_unchanged():
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        result = deidentify(text)
        assert result.text == text, result.counts
        assert result.total == 0


def test_listed_identifiers_remove_free_text_mentions():
    text = "Mr Doe's wife reports John Doe collapsed at home. DOE JOHN referred by clinic."
    result = deidentify(text, identifiers=["DOE^JOHN", "", "W123"])
    assert "john" not in result.text.lower()
    assert "doe" not in result.text.lower()
    assert result.counts["listed"] >= 2
    assert scrub_report(text, ["DOE^JOHN"]) == result.text


@pytest.mark.parametrize(
    "kept",
    [
        "LVEF 55-60%. LVEDV 180 mL (95 mL/m2). Aorta 4.8 cm. AVA 0.7 cm2. Peak 4.3 m/s. Range 12.5-13.0 mm.",
        "Mild MR. MR imaging at 1.5 T. T2 STIR. SAX stack 10 mm. Qp:Qs 2.1. RVEF 41%.",
        "Grade II of VI murmur. 3 chamber view. 2 prior CT scans. NYHA class 3.",
    ],
)
def test_clinical_text_is_not_scrubbed(kept):
    assert deidentify(kept).text == kept


@pytest.mark.parametrize(
    ("data", "status"),
    [("", "empty"), ("  \n ", "empty"), (bytes(range(256)) * 40, "binary"),
     ("Patient: José Núñez, LVEF 45%.".encode() + " Dr Müller".encode("cp1252"), "non_utf8"),
     ("| Parameter | Value | Normal |\n|---|---|---|\n| LVEF (%) | 55 | 57-77 |\n| RVEF (%) | 50 | >45 |", "ok")],
)  # fmt: skip
def test_bad_input_gets_a_status_never_an_exception(data, status):
    result = deidentify(data)
    assert result.status == status
    assert "José" not in result.text and "Müller" not in result.text and "Núñez" not in result.text


def test_a_table_only_report_is_unchanged():
    table = "| LVEF (%) | 55 | 57-77 |\n| LVEDV (mL) | 150 | 100-200 |\n| RVEF (%) | 50 | >45 |"
    assert deidentify(table).text == table


@pytest.mark.slow
def test_a_one_megabyte_report_is_scrubbed():
    text = ("Patient: Noor Iyer, MRN AB-1234567, seen 03/14/2021. LVEF 55%, LVEDV 150 mL. " * 14000)[:1_000_000]
    result = deidentify(text)
    assert result.status == "ok" and "Iyer" not in result.text and "55%" in result.text


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="tag"):
        deidentify("x", mode="bogus")  # type: ignore[arg-type]
