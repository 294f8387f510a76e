from __future__ import annotations

import pytest

from cmrclip.text.deid import deidentify


@pytest.mark.parametrize(
    ("text", "gone"),
    [("Patient: Featherstonehaugh, Margaret   DOB: 1 May 1950", ["Featherstonehaugh", "Margaret"]),
     ("Name: VAN DER BERG, OISÍN\nNHS", ["BERG", "OISÍN"]),
     ("Re: A. Delacroix, DOB 12/03/1950", ["Delacroix"]),
     ("Surname: SØRENSEN   Given names: Jürgen", ["SØRENSEN", "Jürgen"]),
     ("Seen by Dr É. Gaudreau and Prof. Matías Echeverría.", ["Gaudreau", "Matías", "Echeverría"]),
     ("Signed: Rupert Ashdown FRACP", ["Rupert", "Ashdown"]),
     ("Thank you.\nMoriarty D\nCardiac Imaging Fellow", ["Moriarty"]),
     ("Her son Tomás gives the history.", ["Tomás"]),
     ("Dictated by A/Prof Ogunleye / transcribed mls", ["Ogunleye", "mls"]),
     ("Haddad, Chidi / H15/8044/4 / 5/1/1963", ["Haddad", "Chidi"]),
     ("Report available at the portal; Strachan F", ["Strachan"])],
)  # fmt: skip
def test_names_from_context(text, gone):
    out = deidentify(text).text
    assert not [g for g in gone if g in out], out


def test_a_name_found_once_is_removed_everywhere():
    out = deidentify("Patient: Noor Iyer\nNoor reports chest pain; Mrs IYER was anxious.").text
    assert "Noor" not in out and "IYER" not in out, out


@pytest.mark.parametrize(
    ("text", "gone"),
    [("Previously under the care of Kestrel Vale Cardiology.", "Kestrel"),
     ("Scanned at Wexcombe (3 T).", "Wexcombe"), ("Referred from Ostmark University.", "Ostmark"),
     ("Images from University Hospital Caldermoor for review.", "Caldermoor"),
     ("Copy sent to St Wilfrid's, Ballymorran.", "Ballymorran"), ("Klinikum Grantley, Kardiologie", "Grantley"),
     ("SCANNED AT KESTREL VALE ON A 1.5 T SCANNER.", "KESTREL")],
)  # fmt: skip
def test_unlisted_institutions_from_context(text, gone):
    out = deidentify(text).text
    assert gone not in out and "[INSTITUTION]" in out, out


@pytest.mark.parametrize(
    "kept",
    ["Repaired tetralogy of Fallot with a Rastelli conduit.", "Sinus venosus defect draining to the SVC.",
     "Consultant Cardiologist review. Cardiac Imaging Fellow.", "Regional wall motion is normal.",
     "Lake Louise criteria met. Appearances at rest and stress are normal."],
)  # fmt: skip
def test_clinical_words_are_not_names_or_places(kept):
    assert deidentify(kept).text == kept


@pytest.mark.parametrize(
    ("text", "gone"),
    [("Ordering Provider: Jane Roe, NP", ["Jane", "Roe"]), ("Performed by: J. Smith (radiographer).", ["Smith"]),
     ("Scan performed on 3/4/21 by Sarah (radiographer).", ["Sarah"]), ("Previously seen at MGH.", ["MGH"]),
     ("John Okafor is a 54-year-old man with chest pain. Okafor's ECG was abnormal.", ["John", "Okafor"])],
)  # fmt: skip
def test_more_house_styles(text, gone):
    out = deidentify(text).text
    assert not [g for g in gone if g in out], out
