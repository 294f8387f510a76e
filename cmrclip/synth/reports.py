"""Free-text CMR reports generated from the ground truth, in a style that varies by site.

A report names every positive condition (its name or a common synonym, sometimes hedged), explicitly negates a
sample of absent ones, gives measurements that are sometimes missing or rounded, an LVEF with reporting noise, and
some irrelevant sentences. It also carries the fake identifiers, so that de-identification can be tested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cmrclip.synth.lexicon import GROUPS, NEGATABLE, POSITIVE, RELATED, STRUCTURE

__all__ = ["ReportFacts", "write_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFacts:
    """What a report is written from."""

    site: str
    institution: str
    field_strength: float
    manufacturer: str
    patient_name: str
    patient_id: str
    birth_date: str
    study_date: str
    accession: str
    age: int
    sex: str
    positives: tuple[str, ...]
    measures: dict[str, float]
    follow_up: bool = False


_INDICATION = {
    "Ischemic.Cardiomyopathy": "known coronary artery disease, assess viability and function",
    "Hypertrophic.Cardiomyopathy": "family history of HCM, abnormal ECG",
    "Tetralogy": "repaired congenital heart disease, surveillance",
    "Amyloid": "heart failure with preserved ejection fraction, low voltage ECG",
    "Myocarditis": "chest pain and raised troponin after viral illness",
    "Pericarditis": "pleuritic chest pain",
    "Severe.Aortic.Stenosis": "assessment of valve disease",
}
_GENERIC = ("shortness of breath on exertion", "palpitations", "atypical chest pain", "abnormal echocardiogram",
            "syncope", "pre-participation screening")  # fmt: skip
_FILLER = (
    "Images are of diagnostic quality.",
    "Mild respiratory motion artefact on some short-axis slices.",
    "The visualised upper abdomen is unremarkable.",
    "Small bilateral pleural effusions cannot be excluded.",
    "Patient tolerated the examination well.",
    "Breath-holds were suboptimal; images remain diagnostic.",
    "Incidental small hiatus hernia.",
)
_HEADINGS = {
    "northfield": ("CLINICAL HISTORY:", "TECHNIQUE:", "FINDINGS:", "IMPRESSION:"),
    "riverside": ("Indication:", "Technique:", "Findings:", "Conclusion:"),
    "lakeshore": ("HISTORY", "PROTOCOL", "REPORT", "SUMMARY"),
    "hillcrest": ("Reason for study:", "Sequences:", "Results:", "Impression:"),
    "valleyview": ("CLINICAL INFORMATION:", "METHOD:", "FINDINGS:", "CONCLUSION:"),
}


def _num(value: float, rng: np.random.Generator, unit: str, step: float = 1.0) -> str:
    if rng.random() < 0.3:
        step = 5.0
    return f"{round(value / step) * step:.0f} {unit}".rstrip()


def _reported_ef(ef: float, rng: np.random.Generator) -> tuple[str, float]:
    """The LVEF as written (truth + reporting noise; sometimes a 5-point range) and the value it says."""
    noisy = float(np.clip(ef + rng.normal(0, 2.5), 5, 85))
    if rng.random() < 0.15:
        low = int(noisy // 5 * 5)
        return f"{low}-{low + 5}%", low + 2.5
    return f"{noisy:.0f}%", round(noisy)


_VENDOR = {"GE MEDICAL SYSTEMS": "GE", "SIEMENS": "Siemens", "Philips": "Philips"}


def _function_word(ef: float) -> str:
    if ef >= 72:
        return "hyperdynamic"
    if ef >= 55:
        return "normal"
    if ef >= 45:
        return "mildly reduced"
    return "moderately reduced" if ef >= 35 else "severely reduced"


def _lv_sentences(f: ReportFacts, rng: np.random.Generator) -> list[str]:
    m = f.measures
    ef_text, ef = _reported_ef(m["lvef"], rng)
    parts = [f"LVEF {ef_text} with {_function_word(ef)} systolic function."]
    if rng.random() < 0.8:
        parts.append(f"LVEDV {_num(m['lvedv_ml'], rng, 'ml')}, LVESV {_num(m['lvesv_ml'], rng, 'ml')}.")
    if rng.random() < 0.6:
        parts.append(f"LV mass {_num(m['lv_mass_g'], rng, 'g')}.")
    wall = m.get("max_wall_mm")
    if wall and (
        {"Hypertrophic.Cardiomyopathy", "Left.Ventricular.Hypertrophy"} & set(f.positives) or rng.random() < 0.4
    ):
        where = "basal anteroseptum" if "Hypertrophic.Cardiomyopathy" in f.positives else "septum"
        parts.append(f"Maximal end-diastolic wall thickness {wall:.0f} mm ({where}).")
    if not {"Ischemic.Cardiomyopathy", "LV.Aneurysm", "Sarcoidosis"} & set(f.positives) and rng.random() < 0.5:
        parts.append("No regional wall motion abnormality.")
    return parts


def _rv_sentences(f: ReportFacts, rng: np.random.Generator) -> list[str]:
    m = f.measures
    if rng.random() < 0.25:
        return ["The right ventricle is not well assessed."]
    text = (
        f"RVEF {m['rvef']:.0f}%."
        if rng.random() < 0.7
        else f"RV ejection fraction approximately {_num(m['rvef'], rng, '%', 5)}."
    )
    return [text.replace(" %", "%")]


def _mention(key: str, rng: np.random.Generator) -> str:
    phrase = str(rng.choice(POSITIVE[key]))
    hedge = "" if rng.random() < 0.85 else str(rng.choice(["probable ", "findings suggestive of "]))
    return (hedge + phrase) if not phrase.startswith(("features", "findings", "appearances")) else phrase


def _negations(f: ReportFacts, rng: np.random.Generator) -> list[tuple[str, str]]:
    pos = set(f.positives)
    absent = [k for k in NEGATABLE if k not in pos and not pos & set(RELATED.get(k, ()))]
    picked = rng.choice(absent, size=min(len(absent), int(rng.integers(2, 6))), replace=False) if absent else []
    templates = ("No {}.", "No evidence of {}.", "There is no {}.", "{} is not seen.")
    out = []
    for key in sorted(picked):
        noun = str(rng.choice(NEGATABLE[key]))
        text = str(rng.choice(templates)).format(noun)
        out.append((str(key), text[0].upper() + text[1:]))
    return out


_TECHNIQUE = {
    "northfield": "Cardiac MRI on a {field}T {vendor} scanner. Balanced SSFP (FIESTA) cine imaging in short-axis, "
    "2-chamber, 3-chamber and 4-chamber planes with breath-holding.",
    "riverside": "{field}T {vendor}. Retrospectively gated segmented TrueFISP cines: SAX stack from base to apex and "
    "long-axis 2Ch, 3Ch and 4Ch views. No contrast given.",
    "lakeshore": "Multiplanar balanced turbo field echo cine images at {field}T ({vendor}); short-axis stack and "
    "three long-axis views.",
    "hillcrest": "Steady-state free precession cine imaging ({field}T {vendor}) in standard long- and short-axis "
    "planes.",
    "valleyview": "{vendor} {field}T. Cine SSFP: 2CH, LVOT/3CH, 4CH and contiguous short-axis slices.",
}

_DATE_STYLE = {"northfield": "{m}/{d}/{y}", "riverside": "{y}-{m}-{d}", "lakeshore": "{d}.{m}.{y}",
               "hillcrest": "{m}/{d}/{y}", "valleyview": "{y}{m}{d}"}  # fmt: skip


def _date(yyyymmdd: str, site: str) -> str:
    """A DICOM date written the way the site's reports write dates."""
    y, m, d = yyyymmdd[:4], yyyymmdd[4:6], yyyymmdd[6:]
    return _DATE_STYLE.get(site, "{y}{m}{d}").format(y=y, m=m, d=d)


_LABELLED = {"northfield", "valleyview"}
"""Sites whose findings carry a heading per structure; the others write prose paragraphs."""


def _findings(f: ReportFacts, rng: np.random.Generator) -> tuple[str, list[str], list[str]]:
    """Findings grouped by structure; returns (text, positive mentions, negated keys)."""
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    groups["Left ventricle"] += _lv_sentences(f, rng)
    groups["Right ventricle"] += _rv_sentences(f, rng)
    mentions = []
    for key in f.positives:
        mention = _mention(key, rng)
        mentions.append(mention)
        groups[STRUCTURE.get(key, "Other")].append(mention[0].upper() + mention[1:] + ".")
    negs = _negations(f, rng)
    for key, text in negs:
        groups[STRUCTURE.get(key, "Other")].append(text)
    if not {"Left.Atrial.Dilation", "Right.Atrial.Dilation"} & set(f.positives) and rng.random() < 0.5:
        groups["Atria and septa"].insert(0, "Both atria are normal in size.")
    root = f.measures.get("aortic_root_mm")
    if root and ("Aortic.dilation" in f.positives or rng.random() < 0.35):
        groups["Great vessels"].insert(0, f"Aortic root {root:.0f} mm at the sinuses.")
    groups["Other"] += [str(x) for x in rng.choice(_FILLER, size=int(rng.integers(0, 3)), replace=False)]
    labelled = f.site in _LABELLED
    paragraphs = [(f"{name}: " if labelled else "") + " ".join(lines) for name, lines in groups.items() if lines]
    return "\n".join(paragraphs), mentions, [k for k, _ in negs]


def write_report(f: ReportFacts, rng: np.random.Generator) -> tuple[str, list[str]]:
    """Write the report text.

    Returns:
        The text and the condition keys it negates explicitly.
    """
    heads = _HEADINGS.get(f.site, _HEADINGS["northfield"])
    first = next((k for k in f.positives if k in _INDICATION), None)
    history = _INDICATION[first] if first and rng.random() < 0.7 else str(rng.choice(_GENERIC))
    if f.follow_up:
        history += "; follow-up of previous CMR"
    header = (
        f"{f.institution} - Cardiac MRI report\nPatient: {f.patient_name.replace('^', ', ')}  MRN: {f.patient_id}  "
        f"DOB: {_date(f.birth_date, f.site)}\nExam date: {_date(f.study_date, f.site)}  Accession: {f.accession}"
    )
    vendor = _VENDOR.get(f.manufacturer, f.manufacturer)
    technique = _TECHNIQUE.get(f.site, _TECHNIQUE["northfield"]).format(field=f"{f.field_strength:.1f}", vendor=vendor)
    findings, mentions, negated = _findings(f, rng)
    if mentions:
        impression = "\n".join(f"{i}. {m[0].upper() + m[1:]}." for i, m in enumerate(mentions, 1))
    else:
        impression = str(rng.choice(["Normal cardiac MRI.", "No significant abnormality.", "Normal study."]))
    who = f"{f.age}-year-old {'man' if f.sex == 'M' else 'woman'}"
    sections = [header, f"{heads[0]} {who}, {history}.", f"{heads[1]} {technique}",
                f"{heads[2]}\n{findings}", f"{heads[3]}\n{impression}"]  # fmt: skip
    return "\n\n".join(sections) + "\n", negated
