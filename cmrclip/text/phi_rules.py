"""Regular-expression detectors of protected health information (PHI) in report text, one per identifier format.

Each detector yields :class:`Span` records over the original text. Labelled fields ("MRN:", "DOB", "Tel") give only
their value; free formats (dates with month names, e-mail, URL, postcodes, IDs mixing letters and digits, ages over
89) match anywhere. Names and institutions need more context and live in :mod:`cmrclip.text.phi_context`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["MONTH", "Span", "find_format_spans"]

MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)?"
_DAY = rf"(?:[12]\d|3[01]|0?[1-9]){_ORD}"
_YEAR = r"(?:19|20)\d{2}"
_DATES = (
    r"\b\d{1,2}(?P<s>[/.-])\d{1,2}(?P=s)(?:\d{4}|\d{2})\b(?![.-]\d)",
    r"\b\d{4}(?P<t>[./-])\d{1,2}(?P=t)\d{1,2}\b",
    r"\b(?:0?[1-9]|1[0-2])[/.-](?:19|20)\d{2}\b",
    r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",
    rf"\b(?:the\s+)?{_DAY}(?:\s+of)?[\s-]+{MONTH}\b\.?(?:,?[\s-]+(?:{_YEAR}|'\d{{2}})\b)?",
    rf"\b{MONTH}\.?\s+{_DAY}\b(?:,?\s+{_YEAR}\b)?(?!\s*(?:%|mm|ml|cm|g\b))",
    rf"\b{MONTH}\.?,?[\s/-]+{_YEAR}\b",
    r"(?-i:\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sept?|Oct|Nov|Dec|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEPT?|OCT|NOV|DEC)"
    r"(?:[-/]'?|\s')\d{2}\b)",
)
_STREET_WORD = (
    r"(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|crescent|cres|grove|gardens|mews|terrace|tce|place|"
    r"pl|court|ct|parkway|pkwy|pike|boulevard|blvd|hollow|row|walk|square|sq|highway|hwy|circuit|parade|esplanade)"
)
_CAP = r"(?-i:[A-Z\u00c0-\u00de][\w'’-]*)"
_ID_LABEL = (
    r"mrn|mr\s?#|mr\s+(?:no|number)|medical\s+record(?:\s+(?:number|no))?|patient\s+id|pt\.?\s+id|pat\.?-?\s?id|"
    r"hosp(?:ital)?\.?\s+(?:number|no)|nhs\s+(?:number|no)|chi\s+(?:number|no)|unit\s+(?:number|no)|ur\s*(?:no|number)?|"
    r"urn|case\s+(?:no|number)|accession(?:\s+(?:number|no))?|acc|exam\s+(?:number|no|id)|(?:our\s+)?ref|"
    r"study\s+id|episode(?:\s+no)?|visit\s+(?:no|id)|encounter|order\s+(?:no|number)|fin|csn|id"
)
_ID_VALUE = r"(?=[\w./-]*\d)[A-Za-z0-9]+(?:[-/. ][A-Za-z0-9]+)*"
_PHONE_LABEL = r"tel(?:ephone)?|ph(?:one)?|fax|mob(?:ile)?|cell|pager|bleep|ext(?:ension)?|direct\s+line|contact"


@dataclass(frozen=True)
class Span:
    """One identifier found: its ``kind`` (``name``, ``date``, ...) and character offsets in the text."""

    kind: str
    start: int
    end: int


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, _compile(p))
    for kind, p in (
        ("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        ("name", r"(?-i:\b[A-Z]{2,}\^[A-Z]{2,}(?:\^[A-Z]*)*)"),
        ("url", r"\b(?:https?://|www\.)[^\s<>\"']+"),
        (
            "url",
            r"\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|health|local|nhs\.uk|co\.uk|org\.uk|com\.au|de|nl)"
            r"(?:/[^\s<>\"']*)?",
        ),
        ("url", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?:/[^\s<>\"']*)?"),
        *(("date", p) for p in _DATES),
        ("age", r"\b(?:9\d|1[0-2]\d)(?:\s*-\s*|\s*)(?:years?|yrs?|y/?o|y\.o\.)(?:[\s-]*old)?\b"),
        ("age", r"\b(?:aged?|age:)\s*(?:9\d|1[0-2]\d)\b"),
        ("age", r"\b(?:9\d|1[0-2]\d)\s?(?:[mf]|yo)\b"),
        (
            "address",
            rf"\b(?:(?:flat|unit|apt|apartment|suite)[ \t]+\w+,?[ \t]+)?\d{{1,5}}[a-z]?(?:/\d+)?,?[ \t]+"
            rf"(?:{_CAP}[ \t]+){{1,3}}{_STREET_WORD}\b\.?(?:,?[ \t]+(?:apt|unit|suite)\.?[ \t]*\w+)?",
        ),
        ("address", r"\b\w+(?:straße|strasse|str\.|gracht|weg|laan|plein|gasse|platz|allee|kade)[ \t]+\d+[a-z]?\b"),
        (
            "address",
            rf"\b\d{{1,5}},?[ \t]+(?:rue|avenue|boulevard|via|calle|place|chemin)[ \t]+"
            rf"(?:(?:{_CAP}|des|de|du|la|le|del|di)[ \t]?){{1,4}}",
        ),
        ("address", r"\b(?:flat|unit|apt|apartment|suite)[ \t]+\d+\w*"),
        ("address", rf"\b(?:{_CAP}[ \t]+)?(?-i:[A-Z]{{1,2}}\d[A-Z\d]?[ \t]?\d[A-Z]{{2}})\b"),
        (
            "address",
            rf"\b(?:{_CAP}[ \t]+){{0,2}}{_CAP},?[ \t]+(?-i:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|"
            r"MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|"
            r"NSW|VIC|QLD|SA|TAS|NT|ACT)[ \t]+\d{4,5}(?:-\d{4})?\b",
        ),
        ("address", rf"\b\d{{4}}[ \t]?(?-i:[A-Z]{{2}})[ \t]+{_CAP}"),
        (
            "address",
            rf"\b(?:{_CAP},?[ \t]+(?-i:ON|QC|BC|AB|MB|SK|NS|NB|NL|PE)[ \t]+)?(?-i:[A-Z]\d[A-Z][ \t]?\d[A-Z]\d)\b",
        ),
        (
            "institution",
            r"\b(?:hospital|institution|facility|practice|trust|organi[sz]ation|referring\s+(?:hospital|centre|center|"
            r"site|institution))[ \t]*:[ \t]*(?P<v>[^\n;|]{2,80})",
        ),
        ("address", rf"\b\d{{5}}[ \t]+{_CAP}"),
        ("mrn", rf"\b(?:{_ID_LABEL})\b\.?[ \t]*[:#]?[ \t]*(?:no\.?[ \t]*|number[ \t]*)?[:#]?[ \t]*(?P<v>{_ID_VALUE})"),
        ("phone", rf"\b(?:{_PHONE_LABEL})\b\.?[ \t]*(?:no\.?)?[ \t]*[:#]?[ \t]*(?P<v>\+?[\d(][\d \t().-]{{2,18}}\d)"),
        ("phone", r"\+\d{1,3}[ \t.-]?(?:\(0\)[ \t]?)?\d[\d \t.-]{5,14}\d"),
        ("phone", r"\(?\b\d{3}\)?[ \t.-]\d{3}[ \t.-]\d{4}\b"),
        ("id", r"\b(?=[A-Za-z0-9/-]*[A-Za-z])(?=(?:[A-Za-z/-]*\d){4})[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)+\b"),
        ("id", r"\b(?=\w*[A-Za-z])[A-Za-z]{1,4}\d{4,}[A-Za-z]?\b|\b\d{2,}[A-Za-z]{1,3}\d{3,}\b"),
        ("id", r"(?<![\d.,])\d{6,}(?![\d%]|\.\d)"),
        ("id", r"(?<![\d.])\d{3,}\.\d{4,}(?![\d%])"),
    )
)
_DATE_LIKE_ID = re.compile(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}$")
_TRAILING_WORD = re.compile(r"(?:[-/. ](?:[A-Za-z]{2,}))+$")


def _trim_id(text: str, start: int, end: int) -> int:
    """End of an ID value without trailing words ("A758557 Date" -> "A758557") or punctuation."""
    value = text[start:end]
    if (tail := _TRAILING_WORD.search(value)) and any(ch.isdigit() for ch in value[: tail.start()]):
        end = start + tail.start()
    while end > start and text[end - 1] in ".-/ ":
        end -= 1
    return end


def find_format_spans(text: str) -> Iterator[Span]:
    """Every span matched by a format rule (overlaps allowed; the caller merges them)."""
    for kind, pattern in _RULES:
        for match in pattern.finditer(text):
            start, end = match.span("v") if "v" in pattern.groupindex else match.span()
            if kind in ("mrn", "id"):
                end = _trim_id(text, start, end)
                if kind == "id" and _DATE_LIKE_ID.match(text[start:end]):
                    continue
            elif kind in ("url", "email"):
                while end > start and text[end - 1] in ".,;:)]":
                    end -= 1
            if end > start:
                yield Span(kind, start, end)
