"""De-identify report text: defence in depth over every HIPAA Safe Harbor kind that a report can hold.

Four layers find identifier spans on the original text, and their union is replaced:

1. format rules (:mod:`cmrclip.text.phi_rules`): labelled fields, dates and partial dates, ages over 89, e-mail,
   URLs, postcodes, street addresses, IDs that mix letters, digits and separators;
2. phone and fax numbers validated by libphonenumber (``phonenumbers``) for several countries;
3. context (:mod:`cmrclip.text.phi_context`): names after field labels, titles, before degrees, on signature
   lines; institutions before/after institution words and after "at"/"from"; then every recurrence of their words;
4. the study's own identifier list (e.g. from the DICOM header), matched case-insensitively as whole words.

``mode="tag"`` writes ``[NAME]``, ``[DATE]``, ...; ``mode="surrogate"`` writes consistent fake values
(:mod:`cmrclip.text.surrogate`): the same name gives the same fake name, dates move by a per-patient offset.
Measurements (``55%``, ``120 mL``, ``48 mm``, ``0.7 cm2``, "normal range 57-77%") are kept.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import phonenumbers

from cmrclip.text.normalize import decode_report
from cmrclip.text.phi_context import find_context_spans
from cmrclip.text.phi_rules import Span, find_format_spans
from cmrclip.text.surrogate import Surrogates

__all__ = ["IDENTIFIER_KINDS", "DeidMode", "DeidResult", "deidentify", "scrub_report"]

logger = logging.getLogger(__name__)

DeidMode = Literal["tag", "surrogate"]
IDENTIFIER_KINDS = ("name", "date", "age", "phone", "email", "url", "address", "mrn", "id", "institution", "listed")
_PHONE_REGIONS = ("GB", "US", "AU", "NZ", "IE", "DE", "NL", "FR", "CA")
_PHONE_CANDIDATE = re.compile(r"(?<![\w.,/])\+?\(?\d[\d \t().-]{6,18}\d(?![\w%]|\.\d|/)")
_TAGS = {"listed": "[ID]"}


@dataclass(frozen=True)
class DeidResult:
    """De-identified ``text``, how many spans of each kind were replaced, and a ``status``.

    ``status`` is ``ok``, ``empty`` (nothing to de-identify) or, for stored bytes that were not clean text,
    ``binary`` / ``non_utf8`` (the text was still scrubbed).
    """

    text: str
    counts: Mapping[str, int] = field(default_factory=dict)
    status: str = "ok"

    @property
    def total(self) -> int:
        """The number of replaced spans."""
        return sum(self.counts.values())


def _phone_spans(text: str, taken: list[Span]) -> Iterator[Span]:
    """Digit runs that libphonenumber accepts as a valid number of one of the regions (dates excluded)."""
    for match in _PHONE_CANDIDATE.finditer(text):
        if sum(ch.isdigit() for ch in match.group(0)) < 8:
            continue
        if any(s.start < match.end() and match.start() < s.end for s in taken):
            continue
        candidate = match.group(0)
        regions = (None,) if candidate.startswith("+") else _PHONE_REGIONS
        for region in regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                yield Span("phone", match.start(), match.end())
                break


def _listed_spans(text: str, identifiers: Iterable[str]) -> Iterator[Span]:
    """The study's own identifiers; a DICOM name ``SMITH^JOHN`` or ``Smith, John`` also gives its parts."""
    parts: set[str] = set()
    for raw in identifiers:
        value = str(raw or "").strip()
        if not value:
            continue
        parts.add(value)
        parts.update(p.strip() for p in re.split(r"[\^,]", value) if len(p.strip()) >= 2)
    for part in sorted(parts, key=len, reverse=True):
        for match in re.finditer(rf"(?<!\w){re.escape(part)}(?!\w)", text, re.IGNORECASE):
            yield Span("listed", match.start(), match.end())


def _merge(spans: Iterable[Span]) -> list[Span]:
    """Union of overlapping spans; the kind is ``listed`` if any part was, else that of the longest part."""
    merged: list[tuple[int, int, Span]] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1][1]:
            start, end, best = merged[-1]
            if best.kind != "listed" and (span.kind == "listed" or span.end - span.start > best.end - best.start):
                best = span
            merged[-1] = (start, max(end, span.end), best)
        else:
            merged.append((span.start, span.end, span))
    return [Span(best.kind, start, end) for start, end, best in merged]


def find_spans(text: str, identifiers: Iterable[str] = ()) -> list[Span]:
    """All identifier spans of ``text`` from every layer, merged (sorted, non-overlapping)."""
    spans = list(find_format_spans(text))
    spans += _phone_spans(text, [s for s in spans if s.kind == "date"])
    spans += find_context_spans(text)
    spans += _listed_spans(text, identifiers)
    return _merge(spans)


def _render(text: str, spans: list[Span], surrogates: Surrogates | None) -> str:
    out, last = [], 0
    for span in spans:
        out.append(text[last : span.start])
        value = text[span.start : span.end]
        if surrogates is None:
            out.append(_TAGS.get(span.kind, f"[{span.kind.upper()}]"))
        else:
            kind = "name" if span.kind == "listed" and not any(ch.isdigit() for ch in value) else span.kind
            out.append(surrogates.replace(kind, value))
        last = span.end
    out.append(text[last:])
    return "".join(out)


def deidentify(
    text: str | bytes,
    identifiers: Iterable[str] = (),
    mode: DeidMode = "tag",
    key: str | None = None,
    surrogates: Surrogates | None = None,
) -> DeidResult:
    """Replace identifiers in ``text`` with tags or surrogates and count them; never raises on odd text.

    Args:
        text: report text, or stored bytes (decoded UTF-8 first, then cp1252/latin-1).
        identifiers: extra strings known to identify this study (patient name, ID, accession number, referring
            physician, institution, dates from the DICOM header); matched case-insensitively as whole words.
        mode: ``tag`` (``[NAME]``, ``[DATE]``, ...; listed identifiers become ``[ID]``) or ``surrogate``.
        key: surrogate mode: the per-patient secret that fixes fake names and the date offset (default: the
            identifiers joined; pass a salted patient ID so that all of a patient's reports agree).
        surrogates: surrogate mode: a :class:`Surrogates` shared across several reports of one patient.

    Returns:
        The scrubbed text, the counts per kind (identifiers from the list count under ``listed``) and a status.
    """
    if mode not in ("tag", "surrogate"):
        raise ValueError(f"deidentify mode {mode!r}: choose 'tag' or 'surrogate'")
    identifiers = tuple(identifiers)
    decoded = decode_report(text) if isinstance(text, bytes) else None
    clean = decoded.text if decoded is not None else text
    status = _status(clean, decoded.flags if decoded is not None else ())
    if status == "empty":
        return DeidResult(text=clean, status=status)
    if mode == "surrogate" and surrogates is None:
        surrogates = Surrogates(key if key is not None else "\0".join(identifiers))
    spans = find_spans(clean, identifiers)
    counts = Counter(span.kind for span in spans)
    return DeidResult(text=_render(clean, spans, surrogates), counts=dict(counts), status=status)


def _status(text: str, flags: Iterable[str]) -> str:
    flags = tuple(flags)
    if not text.strip():
        return "empty"
    return next((f for f in ("binary", "non_utf8") if f in flags), "ok")


def scrub_report(text: str, identifiers: Iterable[str] = ()) -> str:
    """``deidentify`` returning only the text: the ``scrub_report`` callable that ``ingest`` takes."""
    return deidentify(text, identifiers).text
