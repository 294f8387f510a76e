"""The labeler against the synthetic cohort's known truth (reports written by ``cmrclip.synth``, not by us)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cmrclip.conditions import condition_keys
from cmrclip.synth.reports import ReportFacts, write_report
from cmrclip.text.labeler import label_report

SITES = ("northfield", "riverside", "lakeshore", "hillcrest", "valleyview")
# Labels our conventions derive from another condition's phrase; the generator sets only the named one.
IMPLIED = {
    "Previous.Surgery": ("Tetralogy",),  # "repaired tetralogy" is previous surgery
    "Other.Cardiac.Mass": ("Atrial.Myxoma", "Cardiac.Tumor", "Cardiac.Thrombus"),  # any "mass" phrase
}
STATED_EF = re.compile(r"LVEF (\d+)(?:-(\d+))?%")


def agreement(texts: list[str], truths: list[set[str]]) -> dict[str, float]:
    """Recall of mentions (positive or hedged), strict positive recall, and positive precision."""
    found = strict = false_pos = total = 0
    ef_ok = ef_n = 0
    for text, truth in zip(texts, truths, strict=True):
        out = label_report(text)
        for key in condition_keys():
            label = out.labels.get(key)
            if key in truth:
                total += 1
                found += label in ("positive", "uncertain")
                strict += label == "positive"
            elif label == "positive" and not truth & set(IMPLIED.get(key, ())):
                false_pos += 1
        stated = STATED_EF.search(text)
        if stated:
            ef_n += 1
            low, high = float(stated.group(1)), float(stated.group(2) or stated.group(1))
            ef_ok += out.lvef == (low + high) / 2
    return {
        "mention_recall": found / total,
        "positive_recall": strict / total,
        "precision": (strict / (strict + false_pos)) if strict + false_pos else 1.0,
        "lvef_exact": ef_ok / ef_n,
    }


def synthetic_reports(n: int, seed: int) -> tuple[list[str], list[set[str]]]:
    rng = np.random.default_rng(seed)
    keys = condition_keys()
    texts, truths = [], []
    for i in range(n):
        positives = tuple(rng.choice(keys, size=int(rng.integers(0, 4)), replace=False))
        lvef = float(rng.uniform(20, 75))
        facts = ReportFacts(
            site=SITES[i % len(SITES)], institution="Northfield General Hospital", field_strength=1.5,
            manufacturer="SIEMENS", patient_name="DOE^JANE", patient_id="12345678", birth_date="19600101",
            study_date="20200101", accession="AC123456", age=60, sex="F", positives=positives,
            measures={"lvef": lvef, "lvedv_ml": 150.0, "lvesv_ml": 150.0 * (1 - lvef / 100), "lv_mass_g": 120.0,
                      "rvef": 55.0},
        )  # fmt: skip
        text, _ = write_report(facts, rng)
        texts.append(text)
        truths.append(set(positives))
    return texts, truths


def test_labeler_recovers_synthetic_truth():
    scores = agreement(*synthetic_reports(300, seed=7))
    # Every mention is found; the generator hedges ~40 % of them ("probable ...", "findings suggestive of ..."),
    # which our conventions label 'uncertain', so strict positive recall is about 0.6.
    assert scores["mention_recall"] >= 0.99, scores
    assert scores["positive_recall"] >= 0.5, scores
    assert scores["precision"] >= 0.98, scores
    assert scores["lvef_exact"] == 1.0, scores


@pytest.mark.slow
def test_tiny_cohort_reports_agree_with_ground_truth(tiny_cohort):
    reports = [json.loads(line) for line in (tiny_cohort / "reports.jsonl").read_text().splitlines()]
    truth = pd.read_csv(tiny_cohort / "ground_truth.csv").set_index("study_id")
    keys = condition_keys()
    truths = [{k for k in keys if truth.loc[r["study_id"], k] == 1} for r in reports]
    scores = agreement([r["text"] for r in reports], truths)
    assert scores["mention_recall"] == 1.0, scores
    assert scores["precision"] >= 0.9, scores
    assert scores["lvef_exact"] == 1.0, scores


@pytest.mark.slow
def test_tiny_cohort_reports_are_deidentified(tiny_cohort):
    from cmrclip.text.deid import deidentify

    for line in (tiny_cohort / "reports.jsonl").read_text().splitlines():
        report = json.loads(line)
        header = re.search(r"^(.*)\nPatient: (.+?)\s+MRN: (\S+)\s+DOB: (\S+)\nExam date: (\S+)", report["text"], re.M)
        assert header, report["text"][:300]
        planted = [header.group(1).split(" - ")[0], *header.group(2).split(", "), *header.group(3, 4, 5)]
        planted = [p for p in [*planted, report["study_id"], report["patient_id"]] if len(p) > 1]  # not initials
        scrubbed = deidentify(report["text"]).text
        left = [p for p in planted if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", scrubbed, re.IGNORECASE)]
        assert not left, (left, scrubbed[:300])
        assert label_report(scrubbed).labels == label_report(report["text"]).labels
