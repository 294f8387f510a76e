from __future__ import annotations

from cmrclip.text.normalize import decode_report, expand_abbreviations, is_all_caps, normalize_text


def test_decode_utf8_passes_through():
    out = decode_report("Mild MR – 55 %".encode())
    assert out.text == "Mild MR – 55 %"
    assert out.encoding == "utf-8"
    assert out.flags == ()


def test_decode_falls_back_to_cp1252_and_flags_it():
    raw = "Patient’s LVEF 55%".encode("cp1252")
    out = decode_report(raw)
    assert out.text == "Patient’s LVEF 55%"
    assert out.encoding == "cp1252"
    assert "non_utf8" in out.flags


def test_decode_undecodable_bytes_never_raise():
    out = decode_report(bytes(range(256)))
    assert "non_utf8" in out.flags
    assert "control_chars" in out.flags
    assert "\x00" not in out.text


def test_normalize_units_whitespace_and_unicode():
    text = "LVEF  55 %\u00a0and LVEDV 120ml (62 ml/m²),\r\n\r\n\r\nmass 80 g/m²; AVA≈0.8 cm2\u2013ok"
    out = normalize_text(text)
    assert "LVEF 55%" in out
    assert "120 mL" in out
    assert "62 mL/m2" in out
    assert "80 g/m2" in out
    assert "approximately 0.8 cm2-ok" in out
    assert "\n\n\n" not in out


def test_expand_abbreviations():
    out = expand_abbreviations("S/p CABG, h/o MI, w/o thrombus, r/o HCM, c/w DCM, mod. MR")
    assert out == "status post CABG, history of MI, without thrombus, rule out HCM, consistent with DCM, moderate MR"


def test_is_all_caps():
    assert is_all_caps("FINDINGS: THE LEFT VENTRICLE IS DILATED. EF 30%.")
    assert not is_all_caps("FINDINGS: The left ventricle is dilated.")
    assert not is_all_caps("EF 30%")  # too few letters to tell
