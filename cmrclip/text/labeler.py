"""Label a CMR report: positive / negative / uncertain per condition, with the sentence that decided each label.

Rules (NegEx-style, sentence and clause scope):
- a condition phrase from ``synonyms.yaml`` is found in a clause (sentences split at ``. ; ?`` and line breaks,
  clauses at "but", "however", "although", ...);
- the nearest trigger before it decides (negation, uncertainty, hypothetical such as "evaluate for", or another
  person such as "father with"), else the first trigger shortly after it ("cannot be excluded", "is not seen");
- "severe"/"large" conditions take the nearest severity qualifier (mild/moderate -> negative, none -> uncertain,
  and an ungraded mention never overrides a graded one);
- sections rank impression > findings (and unheaded text) > history; within the deciding section positive beats
  uncertain beats negative; hedged mentions in the history (the clinical question) are ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cmrclip.text.lexicon import POST_TRIGGERS, PRE_TRIGGERS, SEVERITY, Entry, Lexicon, load_lexicon, severity_level
from cmrclip.text.lvef import Measurements, extract_measurements
from cmrclip.text.normalize import decode_report, expand_abbreviations, is_all_caps, normalize_text
from cmrclip.text.sections import split_sections, split_sentences

__all__ = ["LabelStatus", "Mention", "ReportLabels", "label_report"]

logger = logging.getLogger(__name__)

LabelStatus = Literal["positive", "negative", "uncertain"]
ReportStatus = Literal["ok", "empty", "binary"]

_CLAUSE_BREAK = re.compile(
    r"(?<![a-z])(?:but|however|although|though|whereas|while|except|aside from|apart from|other than|which|"
    r"with the exception of)(?![a-z])"
)
_SECTION_RANK = {"impression": 3, "history": 1}
_STATUS_RANK = {"positive": 2, "uncertain": 1, "negative": 0}
_PROCEDURES = frozenset({"Previous.Surgery", "Prosthetic.Valve"})
_POST_WINDOW = 40
_SEVERITY_BEFORE = 40
_SEVERITY_AFTER = 30


@dataclass(frozen=True)
class Mention:
    """One finding of a condition phrase: what it said, where, and the sentence it is in."""

    key: str
    status: LabelStatus
    section: str
    phrase: str
    sentence: str
    graded: bool = True  # False: a "severe"-type finding stated without any grade (uncertain, weakest evidence)


@dataclass(frozen=True)
class ReportLabels:
    """The labels of one report.

    Attributes:
        labels: condition key -> ``positive`` | ``negative`` | ``uncertain`` (unmentioned conditions left out).
        evidence: condition key -> the sentence that decided its label.
        measurements: LVEF and volumes stated in the report.
        status: ``ok``, ``empty`` (nothing to label) or ``binary`` (stored bytes that are not text; not labelled).
        flags: what was odd about the input: ``non_utf8``, ``replacement_chars``, ``control_chars``,
            ``no_sections``, ``all_caps``.
        mentions: every mention found, in reading order (for debugging a label).
    """

    labels: dict[str, LabelStatus] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    measurements: Measurements = field(default_factory=Measurements)
    status: ReportStatus = "ok"
    flags: tuple[str, ...] = ()
    mentions: tuple[Mention, ...] = ()

    @property
    def lvef(self) -> float | None:
        """The LVEF stated in the report (percent), or ``None``."""
        return self.measurements.lvef

    def to_json(self, report_id: Any = None) -> dict[str, Any]:
        """The ``cmrclip reports label`` output line: ``id``, ``labels``, ``lvef``, ``evidence``, status fields."""
        return {
            "id": report_id,
            "labels": dict(self.labels),
            "lvef": self.lvef,
            "evidence": dict(self.evidence),
            "status": self.status,
            "flags": list(self.flags),
            "measurements": self.measurements.to_dict(),
        }


_CLAUSE_HINTS = ("but", "howev", "though", "wherea", "while", "except", "aside", "apart", "other than", "which")


def _clauses(sentence: str) -> list[str]:
    if not any(hint in sentence for hint in _CLAUSE_HINTS):
        return [sentence] if sentence.strip() else []
    out, start = [], 0
    for match in _CLAUSE_BREAK.finditer(sentence):
        out.append(sentence[start : match.start()])
        start = match.end()
    out.append(sentence[start:])
    return [c for c in out if c.strip()]


def _trigger(clause: str, match: re.Match[str]) -> str | None:
    """The deciding trigger category (``neg``/``unc``/``hyp``/``exp``) for a finding, or ``None``."""
    last = None
    for last in PRE_TRIGGERS.finditer(clause, 0, match.end()):  # noqa: B007 - the last one is wanted
        pass
    if last is None:
        last = POST_TRIGGERS.search(clause, match.end(), match.end() + _POST_WINDOW)
    return None if last is None else str(last.lastgroup).removesuffix("_q")


def _severity(clause: str, match: re.Match[str], prev_end: int) -> LabelStatus | Literal["ungraded"]:
    last = None
    for last in SEVERITY.finditer(clause, max(prev_end, match.start() - _SEVERITY_BEFORE), match.end()):  # noqa: B007
        pass
    if last is None:
        last = SEVERITY.search(clause, match.end(), match.end() + _SEVERITY_AFTER)
    return "ungraded" if last is None else severity_level(last)  # type: ignore[return-value]


def _status(
    clause: str, match: re.Match[str], entry: Entry, prev_end: int, section: str
) -> LabelStatus | Literal["ungraded"] | None:
    if entry.polarity == "negative":
        return "negative"
    status: LabelStatus | Literal["ungraded"] | None
    match _trigger(clause, match):
        case "neg":
            status = "negative"
        case "unc":
            status = "uncertain"
        case "hyp" | "exp":
            return None
        case "aff" if _PROCEDURES.intersection(entry.keys):
            return None  # "meets criteria for valve replacement": planned, not done
        case _:
            status = "positive"
    if status == "positive" and entry.severity:
        status = _severity(clause, match, prev_end)
    if section == "history" and status in ("uncertain", "ungraded"):
        return None
    return status


def _mentions(section: str, sentence: str, lexicon: Lexicon) -> list[Mention]:
    out = []
    for clause in _clauses(sentence.lower()):
        prev_end = 0
        for match in lexicon.scanner.scan(clause):
            entry = lexicon.entries[int(str(match.lastgroup)[1:])]
            status = _status(clause, match, entry, prev_end, section)
            prev_end = match.end()
            if status == "ungraded":
                out += [Mention(k, "uncertain", section, match.group(0), sentence, False) for k in entry.keys]
            elif status is not None:
                out += [Mention(key, status, section, match.group(0), sentence) for key in entry.keys]
    return out


def _decide(mentions: list[Mention]) -> tuple[dict[str, LabelStatus], dict[str, str]]:
    best: dict[str, tuple[tuple[bool, int, int], Mention]] = {}
    for mention in mentions:
        rank = (mention.graded, _SECTION_RANK.get(mention.section, 2), _STATUS_RANK[mention.status])
        if mention.key not in best or rank > best[mention.key][0]:
            best[mention.key] = (rank, mention)
    labels = {key: m.status for key, (_, m) in best.items()}
    evidence = {key: m.sentence for key, (_, m) in best.items()}
    return labels, evidence


def label_report(text: str | bytes, synonyms: Path | None = None) -> ReportLabels:
    """Label one report for the 39 conditions and extract its LVEF; never raises on odd text.

    Args:
        text: the report, as text or as stored bytes (decoded UTF-8 first, then cp1252/latin-1).
        synonyms: a user YAML of extra phrases (same shape as ``cmrclip/text/synonyms.yaml``), tried first.

    Returns:
        The labels, evidence sentences, measurements and a status (``empty`` for a blank report, ``binary`` for
        bytes that are not text).

    Raises:
        ConfigError: only if ``synonyms`` is given and is invalid.
    """
    lexicon = load_lexicon(synonyms)
    decoded = decode_report(text)
    flags = list(decoded.flags)
    clean = normalize_text(decoded.text)
    if not clean:
        return ReportLabels(status="empty", flags=tuple(flags))
    if "binary" in flags:
        return ReportLabels(status="binary", flags=tuple(flags))
    if is_all_caps(clean):
        flags.append("all_caps")
    expanded = expand_abbreviations(clean)
    sections = split_sections(expanded)
    if all(s.name == "body" for s in sections):
        flags.append("no_sections")
    mentions: list[Mention] = []
    for section in sections:
        for sentence in split_sentences(section.text):
            mentions += _mentions(section.name, sentence, lexicon)
    labels, evidence = _decide(mentions)
    return ReportLabels(
        labels=labels,
        evidence=evidence,
        measurements=extract_measurements(expanded),
        flags=tuple(flags),
        mentions=tuple(mentions),
    )
