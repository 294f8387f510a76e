"""Split a report into history/indication, technique, comparison, findings and impression, across site templates.

Headers are recognised at the start of a line (``FINDINGS:``, ``Findings -``, ``1. IMPRESSION``, a line holding only
``CONCLUSION``) or inline after a sentence end when followed by a colon (``... Technique: cine SSFP ...``). Text
before the first header is ``preamble``; a report without any header is one ``body`` section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SECTION_NAMES", "Section", "split_sections", "split_sentences"]

SECTION_NAMES = ("preamble", "history", "technique", "comparison", "findings", "impression", "body")

_HEADERS: dict[str, tuple[str, ...]] = {
    "history": (
        r"clinical history",
        r"history",
        r"hx",
        r"clinical indications?",
        r"indications?(?: for (?:the )?(?:study|exam(?:ination)?|scan))?",
        r"reason for (?:the )?(?:exam(?:ination)?|study|referral|scan)",
        r"clinical (?:information|details|question)",
        r"referral (?:information|question)",
    ),
    "technique": (
        r"techniques?",
        r"protocol",
        r"procedure",
        r"sequences(?: performed)?",
        r"imaging technique",
        r"methods?",
    ),
    "comparison": (r"comparisons?", r"prior studies"),
    "findings": (
        r"findings",
        r"cardiac findings",
        r"results",
        r"measurements",
        r"quantitative (?:analysis|measurements)",
        r"observations",
        r"description",
        r"report",
        r"extracardiac findings",
    ),
    "impression": (
        r"final impressions?",
        r"impressions?",
        r"conclusions?",
        r"summary",
        r"diagnos[ie]s",
        r"opinion",
        r"interpretation",
        r"assessment",
        r"imp",
    ),
}

_ALTERNATIVES: list[str] = []
for _name, _patterns in _HEADERS.items():
    for _pattern in _patterns:
        _ALTERNATIVES.append(_pattern)
_ALTERNATIVES.sort(key=len, reverse=True)
_HEADER_WORDS = "|".join(_ALTERNATIVES)
# A header at a line start: optional numbering, the header words, then a colon/dash or the end of the line.
_LINE_HEADER = re.compile(
    rf"^[ \t]*(?:\d+[.)][ \t]*)?(?P<h>{_HEADER_WORDS})[ \t]*(?::|-(?=\s)|$)[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
# A header in capitals at a line start, followed by its text without a colon ("HISTORY 54-year-old man").
_CAPS_HEADER = re.compile(rf"^[ \t]*(?P<h>{_HEADER_WORDS.upper()})[ \t]+(?=\S)", re.MULTILINE)
# An inline header after a sentence end: needs a colon.
_INLINE_HEADER = re.compile(rf"(?<=[.;])[ \t]+(?P<h>{_HEADER_WORDS})[ \t]*:[ \t]*", re.IGNORECASE)
_HEADER_PATTERNS = [(name, re.compile(rf"(?:{'|'.join(pats)})$", re.IGNORECASE)) for name, pats in _HEADERS.items()]

_SENTENCE_END = re.compile(
    r"(?<=[.!?;])(?<!\b[Dd]r\.)(?<!\bvs\.)(?<!\s\d\.)(?<!^\d\.)(?<!\s\d\d\.)(?<!^\d\d\.)\s+|\s*\n\s*", re.MULTILINE
)
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+")


@dataclass(frozen=True)
class Section:
    """One section of a report: its canonical ``name``, the ``header`` as written, its ``text`` and offset."""

    name: str
    header: str
    text: str
    start: int


def _canonical(header: str) -> str:
    words = " ".join(header.lower().split())
    for name, pattern in _HEADER_PATTERNS:
        if pattern.match(words):
            return name
    return "body"


def _header_matches(text: str) -> list[re.Match[str]]:
    found = list(_LINE_HEADER.finditer(text))
    taken = [(m.start(), m.end()) for m in found]
    for m in (*_CAPS_HEADER.finditer(text), *_INLINE_HEADER.finditer(text)):
        if not any(start <= m.start("h") < end for start, end in taken):
            found.append(m)
    return sorted(found, key=lambda m: m.start())


def split_sections(text: str) -> list[Section]:
    """Split ``text`` into sections in reading order.

    Headers: ``FINDINGS:``, ``Findings -``, ``1. IMPRESSION``, a line holding only ``CONCLUSION``, a capitalised
    header followed by its text (``HISTORY 54-year-old man``), or ``. Technique:`` inside a paragraph.

    Returns:
        Sections named from :data:`SECTION_NAMES`. A report without any recognised header gives one ``body``
        section; text before the first header is ``preamble``. Empty sections are kept (a header with no text).
    """
    matches = _header_matches(text)
    if not matches:
        return [Section("body", "", text.strip(), 0)] if text.strip() else []
    sections: list[Section] = []
    head = text[: matches[0].start()].strip()
    if head:
        sections.append(Section("preamble", "", head, 0))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        header = match.group("h")
        sections += _section(_canonical(header), header.strip(), text[match.end() : end], match.end())
    return sections


def _section(name: str, header: str, body: str, start: int) -> list[Section]:
    """One section; a history that runs over several lines keeps its first line, the rest is ``body``.

    Telegraphic templates put an ``Hx:`` line first and then findings without a header.
    """
    stripped = body.strip()
    if name != "history" or "\n" not in stripped:
        return [Section(name, header, stripped, start)]
    first, rest = stripped.split("\n", 1)
    return [Section(name, header, first.strip(), start), Section("body", "", rest.strip(), start + body.find(rest))]


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at ``. ! ? ;`` followed by a space, and at line breaks; strip list numbering."""
    parts = (_LIST_ITEM.sub("", part).strip() for part in _SENTENCE_END.split(text))
    return [part for part in parts if part]
