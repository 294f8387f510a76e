from __future__ import annotations

from cmrclip.text.sections import split_sections, split_sentences


def names(text: str) -> list[str]:
    return [s.name for s in split_sections(text)]


def test_caps_headers_with_colons():
    text = "CARDIAC MRI\nINDICATION: Dyspnea.\nTECHNIQUE: Cine.\nFINDINGS:\nDilated LV.\nIMPRESSION:\n1. Dilated LV."
    sections = split_sections(text)
    assert [s.name for s in sections] == ["preamble", "history", "technique", "findings", "impression"]
    assert sections[3].text == "Dilated LV."
    assert sections[4].header == "IMPRESSION"


def test_uk_template_and_synonymous_headers():
    text = "Clinical details: Murmur.\nReport:\nNormal LV.\nConclusion:\nNormal study."
    assert names(text) == ["history", "findings", "impression"]


def test_numbered_header_and_inline_headers():
    assert names("1. IMPRESSION: Dilated LV.\n2. Severe MR.") == ["impression"]
    assert names("History: chest pain. Findings: normal LV; no LGE. Impression: normal study.") == [
        "history",
        "findings",
        "impression",
    ]


def test_no_headers_is_one_body_section():
    sections = split_sections("The LV is dilated. No thrombus.")
    assert [s.name for s in sections] == ["body"]
    assert split_sections("   ") == []


def test_multiline_history_keeps_only_its_first_line():
    sections = split_sections("Hx: SOB.\nLV: dilated.\nImp: DCM.")
    assert [(s.name, s.text) for s in sections] == [
        ("history", "SOB."),
        ("body", "LV: dilated."),
        ("impression", "DCM."),
    ]


def test_split_sentences_keeps_decimals_and_titles_and_strips_numbering():
    text = "Ratio 2.4 in diastole. Dr. Smith agreed; no thrombus.\n1. Severe MR\n2. Mild AR. 3. Mild TR."
    assert split_sentences(text) == [
        "Ratio 2.4 in diastole.",
        "Dr. Smith agreed;",
        "no thrombus.",
        "Severe MR",
        "Mild AR.",
        "Mild TR.",
    ]
