"""Names and institutions found from their context, then everywhere they recur in the report.

No list of names or places is needed: a capitalised word is a name after a field label ("Patient:", "Re:",
"Reported by", "her son"), a title ("Dr", "Prof", "Mrs") or before a degree ("MD", "FRACP"), or on a signature line
above a role ("Consultant", "Fellow"); an institution is a capitalised phrase before an institution word
("X Cardiology", "X University", "X General Hospital"), after one ("University Hospital X", "Klinikum X",
"St X's"), or after a place preposition ("at X", "transferred from X"). Words of the clinical vocabulary (the
labeller's phrases, report headings and eponyms such as Fallot) are never names. The distinctive words found this
way are then removed wherever else they occur in the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources

import yaml

from cmrclip.text.phi_rules import Span

__all__ = ["clinical_vocabulary", "find_context_spans"]

_UP = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017e"
_TOKEN = rf"(?:[{_UP}]\.(?=\W|$)|[{_UP}][\w'’-]*)"
_PARTICLES = frozenset(
    [
        "van",
        "der",
        "den",
        "de",
        "da",
        "di",
        "du",
        "le",
        "la",
        "von",
        "ten",
        "ter",
        "del",
        "dos",
        "das",
        "bin",
        "al",
        "el",
        "ní",
        "ó",
        "mac",
        "st",
    ]
)
_TITLES = r"(?:dr|doctor|prof|professor|a/prof|assoc(?:iate)?\.?\s+prof(?:essor)?|mr|mrs|ms|miss|mx|sister|nurse|sr)\.?"
_TITLE_WORDS = frozenset(
    ["dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sister", "nurse", "sr"]
)
_DEGREES = r"(?:MD|M\.D\.|PhD|MBBS|MBChB|FRCR|FRCP|FRACP|FRANZCR|FACC|FESC|FSCMR|MRCP|RN|BMBS|FCSANZ)"
_NAME_FIELDS = (
    r"patient(?:'s)?(?:\s+name)?|pt|name|surname|family\s+name|given\s+names?|first\s+names?|forenames?|re|dear|"
    r"referr(?:er|ing(?:\s+(?:physician|doctor|clinician|consultant|dr))?|ed\s+by)|requesting(?:\s+(?:dr|doctor|"
    r"clinician|physician))?|requested\s+by|attending|consultant|(?:electronically\s+|digitally\s+)?signed(?:\s+by)?|"
    r"dictated(?:\s+by)?|reported(?:\s+by)?|read\s+by|reviewed(?:\s+by)?|verified(?:\s+by)?|authori[sz]ed(?:\s+by)?|"
    r"interpreted\s+by|discussed\s+with|accompanied\s+by|seen\s+by|supervised\s+by|performed\s+by|prepared\s+by|"
    r"ordering(?:\s+(?:provider|physician|clinician|doctor))?|provider|author|gp|cc|copy\s+to|attn|"
    r"(?:(?:his|her|their|the\s+patient's)\s+)?(?:daughter|son|wife|husband|partner|mother|father|sister|brother|"
    r"carer|niece|nephew|friend|next\s+of\s+kin)"
)
_INITIALS_FIELDS = r"(?:transcribed|typed|scribe|transcriptionist)(?:\s+by)?"
_ROLE = (
    r"fellow|consultant|registrar|cardiologist|radiologist|physician|technologist|radiographer|sonographer|"
    r"resident|attending|specialist|director|professor|lecturer"
)
_INST_AFTER = (
    r"general\s+hospital|hospitals?|infirmary|medical\s+cent(?:er|re)|health(?:care)?(?:\s+(?:system|service|"
    r"board|trust|network|district))?|district\s+health\s+board|heart\s+(?:centre|center|institute)|cardiology|"
    r"imaging|radiology|clinic|private|regional|university|institute|(?:nhs\s+)?(?:foundation\s+)?trust|diagnostics"
)
_INST_BEFORE = r"university\s+hospital|university\s+of|klinikum|klinik|h[ôo]pital|ziekenhuis|st\.?|saint|mount|mt\.?"
_PLACE_PREP = (
    r"at|from|to|under\s+the\s+care\s+of|transferred\s+from|performed\s+at|scanned\s+at|sent\s+to|referred\s+from"
)
_I = re.IGNORECASE
_FIELD_RE = re.compile(rf"\b(?:{_NAME_FIELDS})\b(?:[ \t]*[:\-][ \t]*|[ \t]+)", _I)
_TITLE_RE = re.compile(rf"(?<![\w/])(?:{_TITLES})(?=[ \t])[ \t]+", _I)
_INITIALS_RE = re.compile(rf"\b{_INITIALS_FIELDS}[ \t:]+(?P<v>[A-Za-z]{{2,4}})\b", _I)
_DEGREE_RE = re.compile(rf"(?P<v>(?:{_TOKEN}[ \t]+){{0,3}}{_TOKEN}),?[ \t]+{_DEGREES}\b")
_SIGNATURE_RE = re.compile(
    rf"^[ \t]*(?P<v>(?:{_TITLES}[ \t]+)?(?:{_TOKEN}[ \t]+){{0,3}}{_TOKEN})[ \t,]*\n[^\n]*\b(?:{_ROLE})\b",
    re.MULTILINE | _I,
)
_HEADER_RE = re.compile(
    rf"^[ \t]*(?P<v>(?:{_TOKEN},?[ \t]+){{0,3}}{_TOKEN})[ \t]*[(/,][ \t]*"
    r"(?:mrn|dob|d\.o\.b|born|ur\b|nhs|hosp|id\b|[a-z]{0,4}\d)",
    re.MULTILINE | _I,
)
_ROLE_AFTER_RE = re.compile(
    rf"(?P<v>(?:{_TOKEN}[ \t]+){{0,3}}{_TOKEN})[ \t]*\((?i:{_ROLE}|radiographer|nurse|np|pa|rn|gp|scribe)\)"
)
_AGE_AFTER_RE = re.compile(
    rf"(?P<v>{_TOKEN}(?:[ \t]+{_TOKEN}){{1,2}})(?:,[ \t]*|[ \t]+(?:is|was)[ \t]+)an?[ \t]+"
    r"\d{1,3}[- ]?(?:year|yr|y/?o)"
)
_LINE_END_RE = re.compile(rf"(?:^|;)[ \t]*(?P<v>(?:{_TOKEN}[ \t]+){{0,3}}{_TOKEN})[ \t]*$", re.MULTILINE)
_SIGNOFF_RE = re.compile(r"(?:yours\s+(?:sincerely|faithfully)|kind\s+regards|regards),?\s*\n+(?P<v>[^\n]+)", _I)
_INST_AFTER_RE = re.compile(rf"(?P<v>(?:{_TOKEN}[ \t]+){{1,4}})(?i:{_INST_AFTER})\b")
_INST_BEFORE_RE = re.compile(
    rf"\b(?i:{_INST_BEFORE})[ \t]+(?P<v>{_TOKEN}(?:[ \t]+{_TOKEN}){{0,3}})"
    rf"(?:,[ \t]*(?P<w>{_TOKEN}(?:[ \t]+{_TOKEN})?))?"
)
_PREP_RE = re.compile(rf"\b(?i:{_PLACE_PREP})[ \t]+(?:the[ \t]+)?(?P<v>{_TOKEN}(?:[ \t]+{_TOKEN}){{0,3}})")
_TO = re.compile(r"(?i:to|sent\s+to)\b")
_WORD = re.compile(rf"{_TOKEN}|[\w'’-]+")
_CASE_TOKEN = re.compile(_TOKEN)
_FIELD_STOP = frozenset(
    [
        "mrn",
        "dob",
        "id",
        "age",
        "sex",
        "date",
        "exam",
        "accession",
        "acc",
        "tel",
        "phone",
        "fax",
        "ph",
        "referring",
        "study",
        "hospital",
        "nhs",
        "hosp",
        "number",
        "no",
        "ur",
        "urn",
        "gender",
        "born",
        "scanned",
        "case",
        "pat",
        "ref",
        "our",
        "given",
        "surname",
        "name",
        "unit",
        "mr",
    ]
)
_INST_GENERIC = frozenset(
    [
        "university",
        "hospital",
        "klinikum",
        "klinik",
        "st",
        "saint",
        "mount",
        "mt",
        "general",
        "health",
        "regional",
        "private",
        "imaging",
        "cardiology",
        "clinic",
        "institute",
        "trust",
        "centre",
        "center",
        "heart",
        "medical",
        "of",
        "the",
    ]
)


@cache
def clinical_vocabulary() -> frozenset[str]:
    """Lower-case words that are never names or places: every word of ``synonyms.yaml`` and ``vocabulary.yaml``."""
    text = resources.files("cmrclip").joinpath("text")
    synonyms = text.joinpath("synonyms.yaml").read_text(encoding="utf-8").lower()
    extra = yaml.safe_load(text.joinpath("vocabulary.yaml").read_text(encoding="utf-8"))["words"].split()
    return frozenset(set(re.findall(r"[a-z]{3,}", synonyms)) | set(extra))


def _is_name_word(word: str, vocabulary: frozenset[str]) -> bool:
    low = word.lower().rstrip(".")
    if len(low) == 1:
        return low.isalpha()  # an initial
    return low not in vocabulary and low not in _TITLE_WORDS and low not in _FIELD_STOP and not word.isdigit()


def _name_run(text: str, pos: int, vocabulary: frozenset[str], limit: int = 4) -> tuple[int, list[str]]:
    """End offset and words of the name starting at ``pos`` ("Last, First", initials, particles; one line)."""
    end, words, count = pos, [], 0
    for match in re.finditer(rf"[ \t]*(?:,[ \t]*)?({_TOKEN}|[a-zí]{{1,4}}(?=[ \t]))", text[pos : pos + 80]):
        if match.start() != end - pos:
            break
        word = match.group(1)
        particle = word.lower() in _PARTICLES
        if not particle and (not _CASE_TOKEN.fullmatch(word) or not _is_name_word(word, vocabulary)):
            break
        if "," in match.group(0) and (count != 1 or particle):
            break  # "Last, First" only after the first word
        end = pos + match.end()
        words.append(word)
        count += not particle
        if count >= limit:
            break
    while words and words[-1].lower() in _PARTICLES:
        words.pop()
        end = pos + text[pos:end].rstrip().rfind(" ") if " " in text[pos:end].strip() else pos
    return end, words


def _name_spans(text: str, vocabulary: frozenset[str]) -> Iterator[tuple[int, int, list[str]]]:
    for regex in (_FIELD_RE, _TITLE_RE):
        for match in regex.finditer(text):
            start = match.end()
            title = _TITLE_RE.match(text, start)
            begin = title.end() if title else start
            end, words = _name_run(text, begin, vocabulary, 3 if regex is _TITLE_RE else 4)
            if words:
                yield (start, end, words)
    for regex in (
        _INITIALS_RE,
        _DEGREE_RE,
        _SIGNATURE_RE,
        _SIGNOFF_RE,
        _HEADER_RE,
        _LINE_END_RE,
        _ROLE_AFTER_RE,
        _AGE_AFTER_RE,
    ):
        for match in regex.finditer(text):
            start = match.start("v")
            title = _TITLE_RE.match(text, start)
            begin = title.end() if title else start
            end, words = _name_run(text, begin, vocabulary)
            if regex is _INITIALS_RE:
                end, words = match.end("v"), [match.group("v")]
            if regex is _HEADER_RE and len(words) < 2:
                continue  # "Call (02) ...": a header name has a first and a last part
            if words:
                yield (start, end, words)


def _institution_spans(text: str, vocabulary: frozenset[str]) -> Iterator[tuple[int, int, list[str]]]:
    for match in _INST_AFTER_RE.finditer(text):
        words = _WORD.findall(match.group("v"))
        keep = 0
        while keep < len(words) and (words[keep].lower() in vocabulary or not _CASE_TOKEN.fullmatch(words[keep])):
            keep += 1
        rest = [w for w in words[keep:] if w.lower() not in vocabulary and len(w) >= 3 and not w.endswith(".")]
        if rest:
            start = match.start("v") + match.group("v").find(words[keep])
            yield (start, match.end(), rest)
    mixed_case = not text.isupper()
    for regex in (_INST_BEFORE_RE, _PREP_RE):
        for match in regex.finditer(text):
            first = match.group("v").split()[0]
            if regex is _PREP_RE and mixed_case and first.isupper() and (len(first) < 3 or _TO.match(match.group(0))):
                continue  # "to the SVC", "at RV": an abbreviation, not a place (but "seen at MGH" is one)
            words = [w for w in _WORD.findall(match.group(0)) if _is_name_word(w, vocabulary)]
            value = _WORD.findall(match.group("v"))
            if value and _CASE_TOKEN.fullmatch(value[0]) and _is_name_word(value[0], vocabulary) and words:
                end = match.end("w") if "w" in regex.groupindex and match.group("w") else match.end("v")
                start = match.start() if regex is _INST_BEFORE_RE else match.start("v")
                yield (start, end, words)


def _recurrences(text: str, kind: str, words: Iterable[str]) -> Iterator[Span]:
    distinct = {w.lower() for w in words if len(w.rstrip(".")) >= 2} - _INST_GENERIC
    distinct = sorted(distinct, key=len, reverse=True)
    if not distinct:
        return
    pattern = re.compile(rf"(?<![\w]){'|'.join(map(re.escape, distinct))}(?![\w])", _I)
    for match in pattern.finditer(text):
        yield Span(kind, match.start(), match.end())


def find_context_spans(text: str, vocabulary: frozenset[str] | None = None) -> Iterator[Span]:
    """Names and institutions from their context, and every recurrence of their distinctive words."""
    vocabulary = clinical_vocabulary() if vocabulary is None else vocabulary
    for kind, finder in (("name", _name_spans), ("institution", _institution_spans)):
        found: list[str] = []
        for start, end, words in finder(text, vocabulary):
            yield Span(kind, start, end)
            found += [w for w in words if _is_name_word(w, vocabulary) and w.lower() not in _PARTICLES]
        yield from _recurrences(text, kind, found)
