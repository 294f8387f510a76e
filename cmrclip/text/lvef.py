"""Extract LVEF (and LV EDV, ESV, mass, RVEF) from report text: ranges, approximations, biplane vs 3D volumetry.

When a report states several LVEF values, a volumetric (short-axis stack / 3D) value wins over an unqualified one,
which wins over a biplane or visual estimate. A range ("55-60%") gives its midpoint and keeps the bounds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["EFMethod", "Measurements", "extract_measurements"]

EFMethod = Literal["3d", "biplane", "visual", "unspecified"]

_NUM = r"(\d{1,3}(?:\.\d+)?)"
# "LVEF", "LV EF", "EF", "ejection fraction" (not preceded by "RV"/"right ventricular").
_LVEF_KEY = re.compile(
    r"(?<![a-z])(?<!rv )(?<!right ventricular )(?:lvef|lv ef|lv ejection fraction|left ventricular ejection fraction|"
    r"ejection fraction|ef)(?![a-z])",
)
_PERCENT = re.compile(
    rf"(?P<approx>(?:approximately|approx\.?|about|around|estimated at|~|roughly|visually estimated at)\s*)?"
    rf"{_NUM}\s*(?:(?:-|–|to)\s*{_NUM})?\s*(?:%|per ?cent)",
)
_FRACTION = re.compile(r"(?<![\d.])(0\.\d{2})(?![\d%])")
_METHOD_3D = re.compile(r"3d|three[- ]dimensional|volumetr\w*|short[- ]axis|sax|stack|simpson|disc summation")
_METHOD_BIPLANE = re.compile(r"bi-?plane|area[- ]length|single[- ]plane|long[- ]axis")
_METHOD_VISUAL = re.compile(r"visual(?:ly)?|eyeball")
_STOP = re.compile(r"[;\n]|\.(?:\s|$)|\b(?:rvef|rv ef|rv ejection|right ventricular)\b")
_VOLUMES = {
    "lvedv_ml": re.compile(
        r"(?:lvedv|lv edv|lv end[- ]diastolic volume|left ventricular end[- ]diastolic volume)(?!i)\b[^0-9;\n]{0,15}"
        rf"{_NUM}\s*ml(?!/)",
    ),
    "lvesv_ml": re.compile(
        r"(?:lvesv|lv esv|lv end[- ]systolic volume|left ventricular end[- ]systolic volume)(?!i)\b[^0-9;\n]{0,15}"
        rf"{_NUM}\s*ml(?!/)",
    ),
    "lv_mass_g": re.compile(
        rf"(?:lv|left ventricular) (?:myocardial )?mass(?! index)\b[^0-9;\n]{{0,15}}{_NUM}\s*g(?!/)"
    ),
    "rvef": re.compile(
        rf"(?:rvef|rv ef|rv ejection fraction|right ventricular ejection fraction)[^0-9;\n]{{0,15}}{_NUM}\s*%"
    ),
}
_VOLUME_HINTS = {
    "lvedv_ml": ("edv", "end-diastolic", "end diastolic"),
    "lvesv_ml": ("esv", "end-systolic", "end systolic"),
    "lv_mass_g": ("mass",),
    "rvef": ("rvef", "rv ef", "rv ejection", "right ventricular ejection"),
}
_RANK = {"3d": 0, "unspecified": 1, "biplane": 2, "visual": 3}


@dataclass(frozen=True)
class Measurements:
    """Numbers stated in a report (``None`` where not stated). ``lvef`` is the chosen value in percent."""

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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["lvef_values"] = [list(v) for v in self.lvef_values]
        return out


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


def _values_after_key(text: str, start: int, key_start: int) -> list[tuple[float, float, float, EFMethod, bool]]:
    """Percentages after an LVEF keyword, up to the sentence end or an RV keyword."""
    stop = _STOP.search(text, start)
    segment = text[start : stop.start() if stop else min(len(text), start + 120)]
    prefix = text[max(0, key_start - 25) : key_start]
    found = [m for m in _PERCENT.finditer(segment) if 0 < float(m.group(2)) <= 100]
    if not found and (frac := _FRACTION.search(segment[:25])):
        value = round(float(frac.group(1)) * 100, 2)
        return [(value, value, value, _method(segment + prefix), False)]
    methods = _assign_methods(segment, [(m.start(), m.end()) for m in found], prefix)
    out = []
    for match, method in zip(found, methods, strict=True):
        low = float(match.group(2))
        high = float(match.group(3)) if match.group(3) else low
        if high < low or high > 100:
            continue
        out.append((round((low + high) / 2, 2), low, high, method, bool(match.group("approx"))))
    return out


def extract_measurements(text: str) -> Measurements:
    """Find LVEF, LV EDV/ESV (mL), LV mass (g) and RVEF (%) in ``text``.

    ``"LVEF 55-60%"`` gives 57.5 (low 55, high 60); ``"EF approximately 45%"`` gives 45 with ``lvef_approximate``;
    ``"LVEF 40% by biplane and 37% by short axis volumetry"`` gives 37 (method ``3d``).
    """
    candidates: list[tuple[float, float, float, EFMethod, bool]] = []
    text = low = text.lower()  # every pattern is lower-case
    if "ef" in low or "ejection" in low:
        for key in _LVEF_KEY.finditer(text):
            candidates += _values_after_key(text, key.end(), key.start())
    numbers: dict[str, float | None] = {}
    for name, pattern in _VOLUMES.items():
        match = pattern.search(text) if any(h in low for h in _VOLUME_HINTS[name]) else None
        numbers[name] = float(match.group(1)) if match else None
    if not candidates:
        return Measurements(**numbers)
    best = min(candidates, key=lambda c: _RANK[c[3]])
    value, low, high, method, approx = best
    return Measurements(
        lvef=value,
        lvef_low=low if low != high else None,
        lvef_high=high if low != high else None,
        lvef_method=method,
        lvef_approximate=approx,
        lvef_values=tuple(dict.fromkeys((c[0], c[3]) for c in candidates)),
        **numbers,
    )
