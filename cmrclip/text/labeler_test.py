from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmrclip.conditions import condition_keys
from cmrclip.errors import ConfigError
from cmrclip.text.labeler import label_report
from cmrclip.text.scoring import score_labels

TESTDATA = Path(__file__).parent / "testdata"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (TESTDATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def scores(rows: list[dict]) -> tuple[dict[str, float], float, list[tuple]]:
    """Per-label F1 of 'positive', micro F1 of 'negative' (negation handling), and LVEF mismatches."""
    counts = {k: [0, 0, 0] for k in condition_keys()}
    neg = [0, 0, 0]
    lvef_wrong = []
    for row in rows:
        out = label_report(row["text"])
        for key in condition_keys():
            gold, pred = row["labels"].get(key), out.labels.get(key)
            for status, c in (("positive", counts[key]), ("negative", neg)):
                c[0] += gold == status and pred == status
                c[1] += gold != status and pred == status
                c[2] += gold == status and pred != status
        if out.lvef != row["lvef"]:
            lvef_wrong.append((row["id"], row["lvef"], out.lvef))
    per_label = {k: f1(*c) for k, c in counts.items() if c[0] + c[2]}
    return per_label, f1(*neg), lvef_wrong


def test_gold_set_is_well_formed():
    rows = load("reports_gold.jsonl")
    assert len(rows) >= 60
    assert len({r["id"] for r in rows}) == len(rows)
    keys = set(condition_keys())
    positives = set()
    for row in rows:
        assert set(row["labels"]) <= keys, row["id"]
        assert set(row["labels"].values()) <= {"positive", "negative", "uncertain"}, row["id"]
        positives |= {k for k, v in row["labels"].items() if v == "positive"}
    assert positives == keys  # every condition has at least one positive report


def test_gold_set_acceptance():
    per_label, negative_f1, lvef_wrong = scores(load("reports_gold.jsonl"))
    low = {k: round(v, 3) for k, v in per_label.items() if v < 0.9}
    assert not low, f"per-label positive F1 below 0.9: {low}"
    assert negative_f1 >= 0.95
    assert not lvef_wrong, f"LVEF not exact: {lvef_wrong}"


def test_heldout_set_written_after_the_labeler():
    # First run before any tuning: positive micro-F1 0.923, negative 0.875, LVEF 19/20 (see benchmarks/RESULTS.md).
    # Its gold predates negation from normality ("the valves appear normal" is unlabelled there), so the negative
    # goal is on recall: every explicit negative found.
    rows = load("reports_heldout.jsonl")
    per_label, _, lvef_wrong = scores(rows)
    assert min(per_label.values()) >= 0.5
    assert score_labels(rows, label_report).negative_recall >= 0.95
    assert not lvef_wrong


@pytest.mark.parametrize(
    ("text", "key", "status"),
    [
        ("No evidence of myocarditis.", "Myocarditis", "negative"),
        ("Dilated LV without thrombus.", "Cardiac.Thrombus", "negative"),
        ("Dilated LV without thrombus.", "Left.Ventricular.Dilation", "positive"),
        ("Thrombus cannot be excluded.", "Cardiac.Thrombus", "uncertain"),
        ("Possible cardiac sarcoidosis.", "Sarcoidosis", "uncertain"),
        ("Coarctation is not excluded.", "Coarctation", "uncertain"),
        ("The previously seen thrombus has resolved.", "Cardiac.Thrombus", "negative"),
        ("No pericardial effusion, but there is a large pleural effusion.", "Large.Pericardial.Effusion", "negative"),
        ("The left ventricle is not dilated.", "Left.Ventricular.Dilation", "negative"),
        ("Normal biventricular size.", "Right.Ventricular.Dilation", "negative"),
        ("Mild aortic stenosis.", "Severe.Aortic.Stenosis", "negative"),
        ("Moderate to severe aortic regurgitation.", "Severe.Aortic.Regurgitation", "positive"),
        ("Aortic stenosis.", "Severe.Aortic.Stenosis", "uncertain"),
        ("Large circumferential pericardial effusion.", "Large.Pericardial.Effusion", "positive"),
        ("Trace MR, severe TR.", "Severe.Tricuspid.Regurgitation", "positive"),
        ("Trace MR, severe TR.", "Severe.Mitral.Regurgitation", "negative"),
        ("Trileaflet aortic valve.", "Bicuspid.Valve", "negative"),
        ("History of repaired tetralogy of Fallot.", "Previous.Surgery", "positive"),
        ("S/p CABG.", "Previous.Surgery", "positive"),
        ("Father with HCM.", "Hypertrophic.Cardiomyopathy", None),
        ("Refer for AVR.", "Prosthetic.Valve", None),
        ("Non-ischemic cardiomyopathy.", "Ischemic.Cardiomyopathy", None),
        ("LV mass 120 g.", "Other.Cardiac.Mass", None),
    ],
)
def test_negation_uncertainty_severity(text, key, status):
    assert label_report(text).labels.get(key) == status


def test_impression_wins_over_findings_and_history_questions_are_ignored():
    text = (
        "INDICATION: Rule out LV thrombus. ?myocarditis\n"
        "FINDINGS: No LV thrombus is seen.\n"
        "IMPRESSION: Small apical thrombus."
    )
    out = label_report(text)
    assert out.labels["Cardiac.Thrombus"] == "positive"
    assert out.evidence["Cardiac.Thrombus"] == "Small apical thrombus."
    assert "Myocarditis" not in out.labels


def test_output_line_format():
    line = label_report("FINDINGS: Dilated LV, LVEF 30%.\nIMPRESSION: Dilated cardiomyopathy.").to_json("s1")
    assert line["id"] == "s1"
    assert line["labels"] == {"Left.Ventricular.Dilation": "positive", "Non.Ischemic.cardiomyopathy": "positive"}
    assert line["lvef"] == 30
    assert set(line["evidence"]) == set(line["labels"])
    assert line["status"] == "ok"
    json.dumps(line)


@pytest.mark.parametrize(
    ("text", "status", "flag"),
    [
        ("", "empty", None),
        ("   \n  ", "empty", None),
        (b"Findings: dilated LV, patient\x92s EF 30%", "ok", "non_utf8"),
        ("The LV is dilated. No thrombus.", "ok", "no_sections"),
        ("FINDINGS: THE LEFT VENTRICLE IS DILATED. NO THROMBUS. EF 30%.", "ok", "all_caps"),
        (bytes(range(256)) * 3, "binary", "control_chars"),
        (b"LVEF 45%." + " Müller, José: normal LV size.".encode("cp1252"), "ok", "non_utf8"),
        ("Né ".encode() + b"Findings: dilated LV, patient\x92s EF 30%", "ok", "mixed_encoding"),
        ("| LVEF (%) | 55 | 57-77 |\n| LVEDV (mL) | 150 | 100-200 |\n| RVEF (%) | 50 | >45 |", "ok", "no_sections"),
    ],
)
def test_bad_input_gets_a_status_never_a_crash(text, status, flag):
    out = label_report(text)
    assert out.status == status
    if flag:
        assert flag in out.flags


def test_all_caps_report_is_labelled_like_lower_case():
    text = "FINDINGS: THE LEFT VENTRICLE IS DILATED. NO THROMBUS. LVEF 30%."
    assert label_report(text).labels == label_report(text.lower()).labels
    assert label_report(text).lvef == 30


def test_user_synonyms_extend_the_labeler(tmp_path):
    text = "Findings: Fabry cardiomyopathy pattern."
    assert "Hypertrophic.Cardiomyopathy" not in label_report(text).labels
    extra = tmp_path / "extra.yaml"
    extra.write_text("entries:\n  - keys: [Hypertrophic.Cardiomyopathy]\n    patterns: ['fabry cardiomyopathy']\n")
    assert label_report(text, synonyms=extra).labels["Hypertrophic.Cardiomyopathy"] == "positive"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("entries:\n  - keys: [Not.A.Condition]\n    patterns: ['x']\n", "unknown or no condition keys"),
        ("entries:\n  - keys: [Amyloid]\n    patterns: ['(unclosed']\n", "not a valid regex"),
        ("entries:\n  - keys: [Amyloid]\n    patterns: ['(amyloid)']\n", "capturing groups"),
        ("entries:\n  - keys: [Amyloid]\n    patterns: ['{NOPE}']\n", "unknown macro"),
        ("entries:\n  - keys: [Amyloid]\n    polarity: maybe\n    patterns: ['x']\n", "polarity"),
    ],
)
def test_bad_synonyms_file_is_a_config_error(tmp_path, body, match):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=match):
        label_report("text", synonyms=path)


def test_missing_synonyms_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        label_report("text", synonyms=tmp_path / "missing.yaml")


def medpix_text(case: dict) -> str:
    c = case["Case"]
    return f"History: {c['History']}\nFindings: {c['Findings']}\nImpression: {c['Case Diagnosis']}"


def test_real_medpix_teaching_cases(shared_data):
    data = json.loads((shared_data / "medpix_teaching_cases" / "medpix2_cardiac_mr_cases.json").read_text())
    cases = {c["U_id"]: label_report(medpix_text(c)).labels for c in data["cases"]}
    # LV non-compaction with LV dilatation and a small ASD (read in the findings)
    assert cases["MPX2544"]["LV.Non.Compaction"] == "positive"
    assert cases["MPX2544"]["Left.Ventricular.Dilation"] == "positive"
    assert cases["MPX2544"]["Atrial.Septal.Defect"] == "positive"
    # ostium primum ASD with an enlarged right atrium
    assert cases["MPX1675"]["Atrial.Septal.Defect"] == "positive"
    assert cases["MPX1675"]["Right.Atrial.Dilation"] == "positive"
    # bicuspid valve, moderate-to-severe stenosis, dilated ascending aorta, no aortic insufficiency, no coarctation
    bav = cases["MPX2218"]
    assert bav["Bicuspid.Valve"] == "positive"
    assert bav["Aortic.dilation"] == "positive"
    assert bav["Severe.Aortic.Stenosis"] == "positive"
    assert bav["Coarctation"] == "negative"
    # absent pericardium: none of the 39 conditions is claimed
    assert not [k for k, v in cases["MPX1960"].items() if v == "positive"]


def test_random_text_never_crashes():
    import time

    import numpy as np

    from cmrclip.text.deid import deidentify

    rng = np.random.default_rng(3)
    vocab = [
        "FINDINGS:",
        "no",
        "not",
        "severe",
        "mild",
        "LV",
        "dilated",
        "?",
        "-",
        "%",
        "55",
        "(",
        ")",
        ";",
        "mass",
        "Dr.",
        "MRN:",
        "12/12/2020",
        "aortic",
        "stenosis",
        "é",
    ]
    vocab += ["\n", "\x00", "IMPRESSION", "EF"]
    start = time.perf_counter()
    for _ in range(200):
        text = " ".join(rng.choice(vocab, size=int(rng.integers(0, 120))))
        out = label_report(text)
        assert out.status in ("ok", "empty")
        assert set(out.labels.values()) <= {"positive", "negative", "uncertain"}
        deidentify(text)
    assert time.perf_counter() - start < 20  # no pathological backtracking


def test_table_only_report_gives_its_measurements():
    out = label_report("| LVEF (%) | 55 | 57-77 |\n| LVEDV (mL) | 150 | 100-200 |\n| RVEF (%) | 50 | >45 |")
    assert (out.lvef, out.labels) == (55, {})


@pytest.mark.slow
def test_one_megabyte_report_is_labelled():
    text = ("FINDINGS: Dilated LV. LVEF 30%. Normal valves. " * 25000)[:1_000_000]
    out = label_report(text)
    assert out.status == "ok" and out.lvef == 30 and out.labels["Left.Ventricular.Dilation"] == "positive"


@pytest.mark.parametrize(
    ("text", "negated", "kept"),
    [
        ("Normal LV size.", {"Left.Ventricular.Dilation"}, set()),
        ("The left ventricle is normal in size and wall thickness.",
         {"Left.Ventricular.Dilation", "Left.Ventricular.Hypertrophy"}, set()),
        ("Normal biventricular systolic function.", set(), set()),
        ("Normal biventricular systolic function. Asymmetric septal hypertrophy.", set(), set()),
        ("The valves appear normal.", {"Severe.Aortic.Stenosis", "Severe.Mitral.Regurgitation", "Pulmonary.Stenosis",
                                      "Severe.Aortic.Regurgitation", "Severe.Tricuspid.Regurgitation"}, set()),
        ("No regional wall motion abnormality.", {"LV.Aneurysm"}, set()),
        ("The pericardium is unremarkable.", {"Large.Pericardial.Effusion", "Pericarditis"}, set()),
        ("No intracardiac masses.", {"Other.Cardiac.Mass", "Cardiac.Tumor", "Atrial.Myxoma", "Cardiac.Thrombus"},
         set()),
        ("Intact interatrial septum. The ventricular septum is intact.",
         {"Atrial.Septal.Defect", "Ventricular.Septal.Defect"}, set()),
        ("Both atria are normal in size.", {"Left.Atrial.Dilation", "Right.Atrial.Dilation"}, set()),
        ("Atria: normal size. Pericardium: normal.", {"Left.Atrial.Dilation", "Right.Atrial.Dilation",
                                                     "Large.Pericardial.Effusion", "Pericarditis"}, set()),
        ("Left ventricle: normal dimensions, wall thickness and systolic function.",
         {"Left.Ventricular.Dilation", "Left.Ventricular.Hypertrophy"}, set()),
        ("The aortic and mitral valves are normal.",
         {"Severe.Aortic.Stenosis", "Severe.Aortic.Regurgitation", "Severe.Mitral.Regurgitation"}, set()),
        ("Normal valves. IMPRESSION: Severe aortic stenosis.", {"Severe.Mitral.Regurgitation", "Pulmonary.Stenosis",
          "Severe.Aortic.Regurgitation", "Severe.Tricuspid.Regurgitation"}, {"Severe.Aortic.Stenosis"}),
    ],
)  # fmt: skip
def test_negation_from_normality_table(text, negated, kept):
    labels = label_report(text).labels
    assert {k for k, v in labels.items() if v == "negative"} == negated - kept
    assert all(labels[k] == "positive" for k in kept)
    assert "Left.Ventricular.Hypertrophy" not in labels or "wall thickness" in text
