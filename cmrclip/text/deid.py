"""De-identify report text by patterns and by a list of the study's own identifiers.

Patterns cover names (fields, titles, signatures, DICOM ``LAST^FIRST``), MRNs, accession numbers, dates, phone
numbers, e-mail addresses, street addresses and postcodes, and institution names; the list (e.g. from the study's
DICOM header) catches what the patterns miss. Each removed span becomes a tag such as ``[NAME]`` or ``[DATE]``;
:class:`DeidResult` counts them per kind. Measurements (``55%``, ``120 mL``, ``48 mm``, ``0.7 cm2``) are kept.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["IDENTIFIER_KINDS", "DeidResult", "deidentify", "scrub_report"]

logger = logging.getLogger(__name__)

IDENTIFIER_KINDS = (
    "name",
    "mrn",
    "accession",
    "date",
    "phone",
    "email",
    "address",
    "institution",
    "id",
)

# A name part; never a field label that follows a name on the same line ("Jane Doe MRN: ...").
_FIELD_WORDS = r"mrn|dob|id|age|sex|date|exam|accession|acc|tel|phone|fax|referring|study|hospital|nhs"
_NAME = rf"(?!(?i:{_FIELD_WORDS})\b)[A-Z][a-zA-Z'\-]+"
_FULL_NAME = rf"{_NAME}(?:,? (?:[A-Z]\.? )?{_NAME}){{0,2}}(?:,? [A-Z]\.?(?!\w))?"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_STREET = r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln|way|court|ct|place|pl|parkway|pkwy|terrace)"
_DEGREE = r"(?:MD|M\.D\.|DO|PhD|MBBS|MBChB|FRCR|FRCP|FACC|FSCMR|MRCP)"
_INSTITUTION_WORD = (
    r"(?:hospital|medical cent(?:er|re)|health(?:care)? (?:system|center|centre)|clinic|infirmary|"
    r"heart (?:institute|center|centre)|children's hospital|university hospital|nhs (?:foundation )?trust|"
    r"imaging cent(?:er|re))"
)
_NAME_FIELDS = (
    r"patient(?: name)?|name|pt|referring(?: physician| doctor| clinician| consultant)?|referred by|referrer|"
    r"requested by|requesting clinician|attending|(?:electronically |digitally )?signed(?: by)?|dictated(?: by)?|"
    r"reported(?: by)?|read by|reviewed(?: by)?|verified(?: by)?|transcribed(?: by)?|interpreted by|consultant|"
    r"radiologist|cardiologist"
)
_MRN_FIELDS = (
    r"mrn|mr#|mr no\.?|medical record(?: number| no\.?)?|patient id|pt id|hospital (?:number|no\.?)|"
    r"nhs (?:number|no\.?)|unit (?:number|no\.?)"
)
_ACCESSION_FIELDS = r"accession(?: number| no\.?| #)?|acc\.? ?(?:#|no\.?|number)|acc(?=\s*:)|exam (?:number|no\.?|id)"
_DOB_FIELDS = r"dob|d\.o\.b\.|date of birth|birth ?date"
_DATE_VALUE = (
    rf"\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}|(?i:\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}\.?,? \d{{4}})|"
    rf"(?i:{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}})"
)

# Order matters: labelled fields first (they consume their value), free patterns after. A group named ``label``
# is kept in front of the tag ("MRN: [MRN]").
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
        ("mrn", rf"(?P<label>(?i:\b(?:{_MRN_FIELDS})\s*[:#]?\s*))[A-Z0-9][A-Z0-9\- ]{{3,18}}\d"),
        ("accession", rf"(?P<label>(?i:\b(?:{_ACCESSION_FIELDS})\s*[:#]?\s*))[A-Z0-9\-]{{4,20}}"),
        ("date", rf"(?P<label>(?i:\b(?:{_DOB_FIELDS})\s*[:#]?\s*))(?:{_DATE_VALUE}|\S+)"),
        ("name", rf"(?P<label>(?i:\b(?:{_NAME_FIELDS})\s*[:\-]\s*))(?i:(?:dr|prof|mr|mrs|ms|miss)\.? )?{_FULL_NAME}"),
        ("name", rf"\b(?:[Dd]r|DR|[Pp]rof|PROF|Mr|Mrs|Ms|Miss)\.? (?:[A-Z]\.? )?{_NAME}(?: {_NAME})?"),
        ("name", rf"\b{_FULL_NAME},? {_DEGREE}\b(?:,? ?{_DEGREE}\b)*"),
        ("name", r"\b[A-Z]{2,}\^[A-Z]{2,}(?:\^[A-Z]*)*"),
        ("phone", r"(?:\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b(?: ?(?:x|ext\.?) ?\d{1,5})?"),
        ("phone", r"(?P<label>(?i:\b(?:tel|phone|fax|pager|bleep|ext)\.?\s*[:#]?\s*))\+?\d[\d \-]{2,15}\d"),
        ("date", r"\b\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)(?:\d{4}|\d{2})\b"),
        ("date", r"\b\d{4}-\d{2}-\d{2}\b"),
        ("date", r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),
        ("date", rf"(?i:\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}\.?,? \d{{4}}\b)"),
        ("date", rf"(?i:\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b)"),
        ("date", rf"(?i:\b{_MONTH}\.? \d{{4}}\b)"),
        (
            "address",
            rf"\b\d{{1,5}} (?:[A-Z][a-z]+ ){{1,3}}(?i:{_STREET})\b\.?"
            rf"(?:,? (?:[A-Z][a-z]+ ?){{1,3}},? [A-Z]{{2}} \d{{5}}(?:-\d{{4}})?)?",
        ),
        ("address", r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)?, [A-Z]{2} \d{5}(?:-\d{4})?\b"),
        ("address", r"\b(?:[A-Z][a-z]+,? )?[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b"),
        ("institution", rf"\b(?:University|College) of (?:[A-Z][a-zA-Z-]+ ?){{1,3}}(?i:{_INSTITUTION_WORD})?"),
        ("institution", rf"\b(?:[A-Z][a-zA-Z'.&-]+ ){{1,4}}(?i:{_INSTITUTION_WORD})\b"),
        ("id", r"(?<![\d.])\d{7,}(?![\d.%])"),
    )
)
_INSTITUTION_STOP = re.compile(r"^(?:the|at|from|to|of|in|and|with|on)\b", re.IGNORECASE)


@dataclass(frozen=True)
class DeidResult:
    """De-identified ``text`` and how many spans of each kind (``name``, ``date``, ...) were replaced."""

    text: str
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """The number of replaced spans."""
        return sum(self.counts.values())


def _identifier_patterns(identifiers: Iterable[str]) -> list[re.Pattern[str]]:
    """Literal patterns for the study's own identifiers; a DICOM name ``SMITH^JOHN`` also gives its parts."""
    parts: set[str] = set()
    for raw in identifiers:
        value = str(raw or "").strip()
        if not value:
            continue
        parts.add(value)
        if "^" in value or "," in value:
            parts.update(p.strip() for p in re.split(r"[\^,]", value) if len(p.strip()) >= 2)
    ordered = sorted(parts, key=len, reverse=True)
    return [re.compile(rf"(?<!\w){re.escape(p)}(?!\w)", re.IGNORECASE) for p in ordered]


def _tag(kind: str) -> str:
    return f"[{kind.upper()}]"


def deidentify(text: str, identifiers: Iterable[str] = ()) -> DeidResult:
    """Replace identifiers in ``text`` with tags and count them.

    Args:
        text: report text.
        identifiers: extra strings known to identify this study (patient name, ID, accession number, referring
            physician, institution, dates from the DICOM header); matched case-insensitively as whole words.

    Returns:
        The scrubbed text and the counts per kind (identifiers from the list count under ``listed``).
    """
    counts: Counter[str] = Counter()
    for kind, pattern in _RULES:
        text, n = pattern.subn(lambda m, kind=kind: _keep_label(m, kind), text)
        counts[kind] += n
    for pattern in _identifier_patterns(identifiers):
        text, n = pattern.subn("[ID]", text)
        counts["listed"] += n
    return DeidResult(text=text, counts={k: v for k, v in counts.items() if v})


def _keep_label(match: re.Match[str], kind: str) -> str:
    """Replace a match with its tag, keeping a field label such as ``MRN:`` or ``Signed by:`` in front of it."""
    label = match.groupdict().get("label")
    if label:
        return label + _tag(kind)
    if kind == "institution" and (lead := _INSTITUTION_STOP.match(match.group(0))):
        return match.group(0)[: lead.end()] + " " + _tag(kind)
    return _tag(kind)


def scrub_report(text: str, identifiers: Iterable[str] = ()) -> str:
    """``deidentify`` returning only the text: the ``scrub_report`` callable that ``ingest`` takes."""
    return deidentify(text, identifiers).text
