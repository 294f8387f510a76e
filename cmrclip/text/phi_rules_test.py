from __future__ import annotations

import pytest

from cmrclip.text.deid import deidentify
from cmrclip.text.phi_rules import find_format_spans


def kinds(text: str) -> set[str]:
    return {s.kind for s in find_format_spans(text)}


@pytest.mark.parametrize(
    "date",
    ["03/14/2021", "14.03.2021", "2021-03-14", "1/2/98", "14 March 2021", "March 14th, 2021", "8-Jan-2022",
     "the 3rd of May 2021", "the 3rd of May", "3rd May", "December 5th", "Sept 2020", "05/2021", "20210314",
     "Jan-2021", "Mar-21", "2021.03.14"],
)  # fmt: skip
def test_dates_and_partial_dates(date):
    result = deidentify(f"Previous scan on {date} was normal.")
    assert result.text == "Previous scan on [DATE] was normal.", result.text


@pytest.mark.parametrize("age", ["92-year-old", "92 year old", "aged 94", "Age: 97", "101yo", "95 y/o", "93F"])
def test_ages_over_89(age):
    assert "[AGE]" in deidentify(f"A {age} woman with dyspnoea.").text


def test_ages_up_to_89_and_years_alone_are_kept():
    text = "An 89-year-old man. Surgery in 2016. NYHA class 3."
    assert deidentify(text).text == text


@pytest.mark.parametrize(
    "phone",
    ["+44 (0)113 496 0721", "0113 496 0721", "(02) 9876 5432", "+61 2 9876 5432", "+49 30 5557 1234",
     "(520) 555-0187", "520-555-0187", "0412 345 678", "07700 900461", "+353 1 555 0173"],
)  # fmt: skip
def test_phone_numbers_national_and_international(phone):
    assert deidentify(f"Call {phone} with questions.").text == "Call [PHONE] with questions."


def test_extensions_and_fax_after_a_label():
    assert deidentify("Ext. 5856; fax: 020 7946 0958").text == "Ext. [PHONE]; fax: [PHONE]"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("MRN: AB-1234567", "mrn"), ("NHS Number: 943 476 5919", "mrn"), ("UR No. 874 237 7900", "mrn"),
     ("Pat.-ID A758557", "mrn"), ("Our ref: RAD/23/81918", "mrn"), ("seen as Z67-8487-C", "id"),
     ("file 2024MR6686", "id"), ("H96/6636/3 today", "id"), ("number 0148328", "id")],
)  # fmt: skip
def test_record_numbers_with_letters_and_separators(text, kind):
    found = kinds(text)
    assert kind in found, found
    assert not any(ch.isdigit() for ch in deidentify(text).text)


@pytest.mark.parametrize(
    "address",
    ["27 Kingsley Gardens, Leeds LS6 2QR", "14 Banksia Crescent, Parramatta NSW 2150", "Hauptstraße 112, 10115 Berlin",
     "4410 Ridgeview Terrace, Apt 6B, Tucson, AZ 85719", "Keizersgracht 421, 1016 GC Amsterdam",
     "31 Rue des Lilas, 69003 Lyon", "1 Main St, Ottawa ON K1A 0B1"],
)  # fmt: skip
def test_addresses_and_postcodes(address):
    out = deidentify(f"Home: {address}.").text
    assert not any(ch.isdigit() for ch in out), out
    assert "Kingsley" not in out and "Banksia" not in out and "Lilas" not in out


def test_email_and_urls():
    out = deidentify("Mail e.gaudreau@ostmark-uni.de; see https://pacs.x.local/v?s=1 or www.y-imaging.co.uk/r.").text
    assert out == "Mail [EMAIL]; see [URL] or [URL]."


@pytest.mark.parametrize(
    "kept",
    ["LVEF 55-60%. LVEDV 180 mL (95 mL/m2). Aorta 4.8 cm. AVA 0.7 cm2. Peak 4.3 m/s. Range 12.5-13.0 mm.",
     "LV EF = 35% (normal range 57-77%). RV ejection fraction 45 %. LVEDV 242 mL, LV mass 75 g.",
     "Regurgitant volume 68 mL, regurgitant fraction 52%. Qp:Qs 1.9. T1 1050 ms, ECV 34%.",
     "Mild MR. The two leaflets close normally. Drained to the SVC. Reference ranges: SCMR 2020."],
)  # fmt: skip
def test_measurements_are_kept(kept):
    assert deidentify(kept).text == kept


@pytest.mark.parametrize(
    "phone",
    ["02 9876 5432", "01 42 68 53 00", "030 1234567", "(09) 379 0000", "020 7946 0958", "0161 496 0000",
     "(03) 9123 4567", "06-12345678", "020-5551234"],
)  # fmt: skip
def test_unlabelled_national_numbers_need_libphonenumber(phone, monkeypatch):
    # Without the phonenumbers layer the format rules miss every one of these (measured: 10 of 12 formats).
    assert deidentify(f"Please call {phone} tomorrow.").text == "Please call [PHONE] tomorrow."
    monkeypatch.setattr("cmrclip.text.deid._phone_spans", lambda text, taken: iter(()))
    assert any(ch.isdigit() for ch in deidentify(f"Please call {phone} tomorrow.").text)


def test_labelled_institution_fields():
    out = deidentify("Hospital: Wexford General\nFacility: Kingsbridge Medical\nLGE site: inferior wall").text
    assert out == "Hospital: [INSTITUTION]\nFacility: [INSTITUTION]\nLGE site: inferior wall"
