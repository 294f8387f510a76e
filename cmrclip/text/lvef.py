"""Extract this study's LVEF (and LV volumes, mass, RVEF) from report text.

Only the *current* LV ejection fraction counts: a value is "other" when it is the RV's ("RV: EF 45%", "right
ventricular EF"), a prior study's ("previously 35%", "improved from 30% to 45%", "compared with the study of ...,
when the LVEF was 40%", the comparison or history section) or another modality's (echo, TTE, MUGA, SPECT, nuclear,
CT, angiography). A reference range ("normal range 57-77%") is never a value. Numbers may be written in words
("forty-five percent"), as a fraction ("LVEF: 0.45" -> 45), with a decimal comma ("47,5 %"), or after the unit in
a table ("| LVEF (%) | 55 |"). When several current values remain, a volumetric (short-axis stack / 3D) value wins
over an unqualified one, which wins over a biplane or visual estimate; a range ("55-60%") gives its midpoint.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cmrclip.text.sections import split_sections

__all__ = ["EFMethod", "Measurements", "extract_measurements", "words_to_numbers"]

EFMethod = Literal["3d", "biplane", "visual", "unspecified"]

_NUM = r"(\d{1,3}(?:\.\d+)?)"
_LVEF_KEY = re.compile(
    r"(?<![a-z])(?:lvef|lv ef|lv ejection fraction|left ventricular ejection fraction|ejection fraction|ef)(?![a-z])"
)
_RV_BEFORE = re.compile(r"\b(?:rv|right ventric\w*|right heart)\b(?:(?!\b(?:lv|left)\b)[^.;\n]){0,25}$")
_PERCENT = re.compile(
    rf"(?P<approx>(?:approximately|approx\.?|about|around|estimated at|~|roughly|visually estimated at)\s*)?"
    rf"{_NUM}\s*(?:(?:-|–|to)\s*{_NUM})?\s*(?:%|per ?cent)",
)
_FRACTION = re.compile(r"(?<![\d.])(0\.\d{2})(?![\d%])")
_UNIT_FIRST = re.compile(r"^\s*[(\[]?%[)\]]?\s*[|:=]?\s*(\d{1,3}(?:\.\d+)?)(?![\d.]|\s*(?:-|–)\s*\d)")
_REFERENCE = re.compile(r"(?:normal|range|reference|ref\.?|nl|upper|lower|limit|>|<|>=|<=)\W{0,3}$")
_OTHER = re.compile(
    r"\b(?:previous(?:ly)?|prior|earlier|last|compared|comparison|at the time|referring|outside|external|"
    r"echo\w*|tte|tee|transthoracic|trans-?o?esophageal|muga|spect|nuclear|radionuclide|pet|ct|angiogra\w*|"
    r"ventriculogra\w*|cath\w*|had been|used to be)\b|\bfrom\s*$"
)
_CURRENT = re.compile(r"\b(?:now|currently|today|this study|on this study|at present|current(?:ly)?|is|measures)\b")
_CLAUSE_START = re.compile(r"(?:[;\n]|\.(?:\s|$)|\b(?:and|but|whereas|while)\b)(?!.*(?:[;\n]|\.(?:\s|$)))", re.DOTALL)
_METHOD_3D = re.compile(r"3d|three[- ]dimensional|volumetr\w*|short[- ]axis|sax|stack|simpson|disc summation")
_METHOD_BIPLANE = re.compile(r"bi-?plane|area[- ]length|single[- ]plane|long[- ]axis")
_METHOD_VISUAL = re.compile(r"visual(?:ly)?|eyeball")
_STOP = re.compile(r"[;\n]|\.(?:\s|$)|\b(?:rvef|rv ef|rv ejection|right ventricular)\b")
_EDV = r"(?:lvedv|lv edv|lv end[- ]diastolic volume|left ventricular end[- ]diastolic volume)"
_ESV = r"(?:lvesv|lv esv|lv end[- ]systolic volume|left ventricular end[- ]systolic volume)"
_INDEXED = r"\s*(?:\(\s*(?:{key}i\s*)?|,\s*|/\s*)"
_VOLUMES = {
    "lvedv_ml": re.compile(rf"{_EDV}(?!i)\b[^0-9;\n]{{0,15}}{_NUM}\s*ml(?!/)"),
    "lvedvi_ml_m2": re.compile(
        rf"{_EDV}(?:i\b|\s+index(?:ed)?)[^0-9;\n]{{0,15}}{_NUM}\s*ml/m2|{_EDV}\b[^0-9;\n]{{0,15}}\d+(?:\.\d+)?\s*ml"
        rf"{_INDEXED.format(key=_EDV)}{_NUM}\s*ml/m2"
    ),
    "lvesv_ml": re.compile(rf"{_ESV}(?!i)\b[^0-9;\n]{{0,15}}{_NUM}\s*ml(?!/)"),
    "lvesvi_ml_m2": re.compile(
        rf"{_ESV}(?:i\b|\s+index(?:ed)?)[^0-9;\n]{{0,15}}{_NUM}\s*ml/m2|{_ESV}\b[^0-9;\n]{{0,15}}\d+(?:\.\d+)?\s*ml"
        rf"{_INDEXED.format(key=_ESV)}{_NUM}\s*ml/m2"
    ),
    "lv_mass_g": re.compile(
        rf"(?:lv|left ventricular) (?:myocardial )?mass(?! index)\b[^0-9;\n]{{0,15}}{_NUM}\s*g(?!/)"
    ),
    "rvef": re.compile(
        rf"(?:\brvef|\b(?:rv|right ventricular?|right ventricle)\b[^0-9;\n.]{{0,25}}?\b(?:ef|ejection fraction))"
        rf"[^0-9;\n]{{0,15}}{_NUM}\s*%"
    ),
}
_VOLUME_HINTS = {
    "lvedv_ml": ("edv", "end-diastolic", "end diastolic"),
    "lvedvi_ml_m2": ("edv", "end-diastolic", "end diastolic"),
    "lvesv_ml": ("esv", "end-systolic", "end systolic"),
    "lvesvi_ml_m2": ("esv", "end-systolic", "end systolic"),
    "lv_mass_g": ("mass",),
    "rvef": ("rv", "right ventric"),
}
_RANK = {"3d": 0, "unspecified": 1, "biplane": 2, "visual": 3}
_UNITS = dict(
    zip(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"), range(10), strict=True)
)
_TEENS = dict(
    zip(
        ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
        range(10, 20),
        strict=True,
    )
)
_TENS = dict(
    zip(("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), range(20, 100, 10), strict=True)
)
_WORD_NUMBER = re.compile(
    rf"\b(?:(?P<tens>{'|'.join(_TENS)})(?:[- ](?P<unit>{'|'.join(k for k in _UNITS if k != 'zero')}))?|"
    rf"(?P<teen>{'|'.join(_TEENS)})|(?P<single>{'|'.join(_UNITS)}))\b"
    r"(?=(?:\s*(?:-|to)\s*[a-z]+(?:[- ][a-z]+)?)?\s*(?:%|per ?cent|percent))"
)
_DECIMAL_COMMA = re.compile(r"(?<![\d,])(\d{1,2}),(\d)(?=\s*%)")


@dataclass(frozen=True)
class Measurements:
    """Numbers stated in a report (``None`` where not stated). ``lvef`` is this study's LVEF in percent."""

    lvef: float | None = None
    lvef_low: float | None = None
    lvef_high: float | None = None
    lvef_method: EFMethod | None = None
    lvef_approximate: bool = False
    lvef_values: tuple[tuple[float, str], ...] = ()
    lvedv_ml: float | None = None
    lvesv_ml: float | None = None
    lv_mass_g: float | None = None
    rvef: float | None = None
    lvedvi_ml_m2: float | None = None
    lvesvi_ml_m2: float | None = None
    lvef_other: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["lvef_values"] = [list(v) for v in self.lvef_values]
        out["lvef_other"] = list(self.lvef_other)
        return out


def words_to_numbers(text: str) -> str:
    """Write percentages given in words as digits: ``"forty-five percent"`` -> ``"45 percent"`` (lower-case text)."""

    def number(match: re.Match[str]) -> str:
        if match.group("tens"):
            return str(_TENS[match.group("tens")] + _UNITS.get(match.group("unit") or "zero", 0))
        return str(_TEENS.get(match.group("teen") or "", _UNITS.get(match.group("single") or "", 0)))

    return _WORD_NUMBER.sub(number, text)


_METHOD_WORD = re.compile(
    rf"(?P<m3d>{_METHOD_3D.pattern})|(?P<biplane>{_METHOD_BIPLANE.pattern})|(?P<visual>{_METHOD_VISUAL.pattern})"
)
_LEADS_NUMBER = re.compile(r"[\s():=,]*(?:lvef|ef|of|at|is)?[\s():=,]*$")


def _method(context: str) -> EFMethod:
    match = _METHOD_WORD.search(context)
    if not match:
        return "unspecified"
    return {"m3d": "3d", "biplane": "biplane", "visual": "visual"}[str(match.lastgroup)]


def _assign_methods(segment: str, spans: list[tuple[int, int]], prefix: str) -> list[EFMethod]:
    """A method word right before a number belongs to it; otherwise to the number before the word."""
    methods: list[EFMethod] = ["unspecified"] * len(spans)
    for word in _METHOD_WORD.finditer(segment):
        method = _method(word.group(0))
        following = [i for i, (s, _) in enumerate(spans) if s >= word.end()]
        preceding = [i for i, (_, e) in enumerate(spans) if e <= word.start()]
        if following and _LEADS_NUMBER.match(segment[word.end() : spans[following[0]][0]]):
            target = following[0]
        elif preceding:
            target = preceding[-1]
        else:
            continue
        if methods[target] == "unspecified":
            methods[target] = method
    if spans and methods[0] == "unspecified":
        methods[0] = _method(prefix)
    return methods


def _is_other(text: str, value_start: int, section: str) -> bool:
    """True when the value at ``value_start`` belongs to a prior study or another modality (or the RV)."""
    if section in ("history", "comparison"):
        return True
    head = text[max(0, value_start - 160) : value_start]
    clause = head[m.end() :] if (m := _CLAUSE_START.search(head)) else head
    other = None
    for other in _OTHER.finditer(clause):  # noqa: B007 - the last marker is wanted
        pass
    return other is not None and not _CURRENT.search(clause, other.end())


Candidate = tuple[float, float, float, EFMethod, bool, bool]  # value, low, high, method, approximate, other


def _values_after_key(text: str, start: int, key_start: int, section: str) -> list[Candidate]:
    """Percentages after an LVEF keyword, up to the sentence end or an RV keyword."""
    stop = _STOP.search(text, start)
    segment = text[start : stop.start() if stop else min(len(text), start + 120)]
    prefix = text[max(0, key_start - 25) : key_start]
    if table := _UNIT_FIRST.match(segment):
        value = float(table.group(1))
        return [(value, value, value, _method(prefix), False, _is_other(text, key_start, section))]
    found = [m for m in _PERCENT.finditer(segment) if 0 < float(m.group(2)) <= 100]
    found = [m for m in found if not _REFERENCE.search(segment, 0, m.start())]
    if not found and (frac := _FRACTION.search(segment[:25])):
        value = round(float(frac.group(1)) * 100, 2)
        return [(value, value, value, _method(segment + prefix), False, _is_other(text, key_start, section))]
    methods = _assign_methods(segment, [(m.start(), m.end()) for m in found], prefix)
    out = []
    for match, method in zip(found, methods, strict=True):
        low = float(match.group(2))
        high = float(match.group(3)) if match.group(3) else low
        if high < low or high > 100:
            continue
        other = _is_other(text, start + match.start(), section)
        out.append((round((low + high) / 2, 2), low, high, method, bool(match.group("approx")), other))
    return out


def _lvef_candidates(text: str) -> list[Candidate]:
    candidates: list[Candidate] = []
    for section in split_sections(text):
        body = section.text
        for key in _LVEF_KEY.finditer(body):
            if _RV_BEFORE.search(body, max(0, key.start() - 40), key.start()):
                continue  # "RV: EF 45%", "right ventricular EF"
            candidates += _values_after_key(body, key.end(), key.start(), section.name)
    return candidates


def extract_measurements(text: str) -> Measurements:
    """Find this study's LVEF, LV EDV/ESV (mL, mL/m²), LV mass (g) and RVEF (%) in ``text``.

    ``"LVEF 55-60%"`` gives 57.5 (low 55, high 60); ``"EF approximately 45%"`` gives 45 with ``lvef_approximate``;
    ``"LVEF 40% by biplane and 37% by short axis volumetry"`` gives 37 (method ``3d``); ``"LVEF 45% (previously
    35%)"`` gives 45, with 35 in ``lvef_other``.
    """
    low = text.lower()
    if "," in low:
        low = _DECIMAL_COMMA.sub(r"\1.\2", low)
    if "cent" in low or "%" in low:
        low = words_to_numbers(low)
    candidates = _lvef_candidates(low) if ("ef" in low or "ejection" in low) else []
    numbers: dict[str, float | None] = {}
    for name, pattern in _VOLUMES.items():
        match = pattern.search(low) if any(h in low for h in _VOLUME_HINTS[name]) else None
        numbers[name] = float(next(g for g in match.groups() if g)) if match else None
    current = [c for c in candidates if not c[5]]
    other = tuple(dict.fromkeys(c[0] for c in candidates if c[5]))
    if not current:
        return Measurements(lvef_other=other, **numbers)
    value, lo, hi, method, approx, _ = min(current, key=lambda c: _RANK[c[3]])
    return Measurements(
        lvef=value,
        lvef_low=lo if lo != hi else None,
        lvef_high=hi if lo != hi else None,
        lvef_method=method,
        lvef_approximate=approx,
        lvef_values=tuple(dict.fromkeys((c[0], c[3]) for c in current)),
        lvef_other=other,
        **numbers,
    )
