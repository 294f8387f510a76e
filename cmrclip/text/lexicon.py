"""The labeler's vocabulary: condition phrases from ``synonyms.yaml`` (user-extensible) and NegEx-style triggers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from cmrclip.conditions import condition_keys
from cmrclip.errors import ConfigError
from cmrclip.text.scanner import PhraseScanner

__all__ = ["Entry", "Lexicon", "Trigger", "load_lexicon", "severity_level"]

Polarity = Literal["mention", "negative"]
Trigger = Literal["neg", "unc", "hyp", "exp"]

_MACRO = re.compile(r"\{([A-Z]+)\}")

# Triggers before a finding (searched from the clause start up to the end of the finding; the nearest wins).
_PRE_TRIGGERS: dict[str, tuple[str, ...]] = {
    "aff": (r"(?:meets?|meeting|fulfil+s?|fulfil+ing) (?:the )?(?:[a-z-]+ ){0,3}criteria for",),
    "neg": (
        r"no\b[^.;]{0,60}?\bto suggest",
        r"not meeting (?:the )?criteria for",
        r"does not meet (?:the )?criteria for",
        r"no (?:cmr |mri |imaging |phenotypic |convincing |definite )?(?:evidence|features|signs?) of",
        r"negative for",
        r"absence of",
        r"free of",
        r"resolution of",
        r"rather than",
        r"instead of",
        r"without",
        r"no",
        r"not",
        r"never",
        r"neither",
        r"nor",
        r"absent",
        r"resolved",
    ),
    "unc": (
        r"can ?not (?:exclude|rule out)",
        r"can't (?:exclude|rule out)",
        r"raises? the possibility of",
        r"(?:highly )?suggestive of",
        r"suggest(?:s|ing)?",
        r"concerning for",
        r"concern for",
        r"suspicious (?:for|of)",
        r"suspect(?:ed)?",
        r"suspicion of",
        r"question of",
        r"questionable",
        r"possibl[ey]",
        r"probable",
        r"equivocal",
        r"borderline",
        r"indeterminate",
        r"differential(?: diagnosis)?(?: includes?)?",
        r"versus",
        r"vs",
        r"may",
        r"might",
        r"could",
    ),
    "hyp": (
        r"evaluat(?:e|ion)(?: for| of)?",
        r"assess(?:ment)?(?: for| of)?",
        r"rule out",
        r"to exclude",
        r"screen(?:ing)?(?: for)?",
        r"query",
        r"planning",
        r"candidate for",
        r"criteria for",
        r"refer(?:red|ral)? (?:for|to)",
        r"consider(?:ation of)?",
        r"recommend\w*",
        r"prior to",
        r"before",
        r"pre-",
        r"awaiting",
        r"scheduled for",
    ),
    "exp": (r"family history", r"father", r"mother", r"brother", r"sister", r"sibling", r"relatives?"),
}
# Triggers after a finding (the first one within a short window wins).
_POST_TRIGGERS: dict[str, tuple[str, ...]] = {
    "unc": (
        r"(?:can ?not|can't) be (?:excluded|ruled out)",
        r"(?:is |was )?not (?:be )?(?:excluded|ruled out)",
        r"(?:is|are) possible",
        r"(?:is |was |are )?suspected",
        r"(?:is |are )?(?:considered )?less likely",
        r"(?:is )?questioned",
        r"versus",
        r"vs",
    ),
    "neg": (
        r"(?:is |was |are |were )?not (?:seen|identified|present|demonstrated|evident|detected)",
        r"(?:is |was |are |were )?(?:absent|excluded|ruled out)",
        r"(?:has |have )?resolved",
        r"unlikely",
        r":? none",
    ),
    "hyp": (r"planning", r"planned", r"(?:is )?(?:recommended|advised)", r"to be considered", r"timing"),
}

_SEVERITY_WORDS: dict[str, tuple[str, ...]] = {
    "positive": (
        r"moderate(?:ly)?[- ]to[- ](?:severe|large)",
        r"moderately severe",
        r"severe(?:ly)?",
        r"critical",
        r"torrential",
        r"massive",
        r"large",
    ),
    "negative": (
        r"mild(?:ly)?[- ]to[- ]moderate",
        r"small[- ]to[- ]moderate",
        r"trace",
        r"trivial",
        r"minimal",
        r"mild(?:ly)?",
        r"moderate(?:ly)?",
        r"small",
        r"tiny",
        r"physiological",
        r"insignificant",
    ),
}


def _named_alternation(groups: dict[str, tuple[str, ...]], question: bool = False) -> re.Pattern[str]:
    """One regex whose ``lastgroup`` names the category; with ``question`` a ``?`` is an ``unc_q`` match."""
    body = "|".join(f"(?P<{name}>{'|'.join(pats)})" for name, pats in groups.items())
    extra = r"|(?P<unc_q>\?)" if question else ""
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9]){extra}")


PRE_TRIGGERS = _named_alternation(_PRE_TRIGGERS, question=True)
POST_TRIGGERS = _named_alternation(_POST_TRIGGERS, question=True)
SEVERITY = _named_alternation(_SEVERITY_WORDS)


def severity_level(word_match: re.Match[str]) -> str:
    """Map a :data:`SEVERITY` match to ``positive`` (severe/large) or ``negative`` (mild/moderate/small)."""
    return str(word_match.lastgroup)


@dataclass(frozen=True)
class Entry:
    """One group of phrases: the condition keys it speaks about, its polarity and whether severity decides."""

    keys: tuple[str, ...]
    polarity: Polarity
    severity: bool


@dataclass(frozen=True)
class Lexicon:
    """All entries compiled into one scanner; a match's group ``e<i>`` is entry ``i``."""

    entries: tuple[Entry, ...]
    scanner: PhraseScanner


def _expand(pattern: str, macros: dict[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in macros:
            raise ConfigError(f"{where}: unknown macro {{{name}}} in pattern {pattern!r}; define it under 'macros:'")
        return macros[name]

    return _MACRO.sub(sub, pattern)


def _parse_entries(data: dict, where: str, known: set[str]) -> list[tuple[Entry, list[str]]]:
    macros = {str(k): str(v) for k, v in (data.get("macros") or {}).items()}
    out = []
    for i, item in enumerate(data.get("entries") or []):
        keys = tuple(str(k) for k in item.get("keys") or ())
        unknown = [k for k in keys if k not in known]
        if not keys or unknown:
            raise ConfigError(f"{where}: entry #{i} has unknown or no condition keys {unknown or keys}")
        polarity = item.get("polarity", "mention")
        if polarity not in ("mention", "negative"):
            raise ConfigError(f"{where}: entry #{i} polarity must be mention|negative, not {polarity!r}")
        patterns = [_expand(str(p), macros, where) for p in item.get("patterns") or ()]
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{where}: entry #{i} pattern {pattern!r} is not a valid regex: {exc}") from exc
            if compiled.groups:
                raise ConfigError(f"{where}: entry #{i} pattern {pattern!r} has capturing groups; use (?:...)")
        out.append((Entry(keys, polarity, bool(item.get("severity", False))), patterns))
    return out


def _read_yaml(path: Path | None) -> tuple[dict, str]:
    if path is None:
        ref = resources.files("cmrclip").joinpath("text", "synonyms.yaml")
        return yaml.safe_load(ref.read_text(encoding="utf-8")), "cmrclip/text/synonyms.yaml"
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"synonyms file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"synonyms file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"synonyms file {path} must hold a mapping with 'entries:'")
    return data, str(path)


def _normality(base: dict) -> dict:
    """The rules of ``normality.yaml`` as negative entries, with the synonyms' macros (theirs expanded first)."""
    ref = resources.files("cmrclip").joinpath("text", "normality.yaml")
    data = yaml.safe_load(ref.read_text(encoding="utf-8"))
    macros = {str(k): str(v) for k, v in (base.get("macros") or {}).items()}
    where = "cmrclip/text/normality.yaml"
    macros.update({str(k): _expand(str(v), macros, where) for k, v in (data.get("macros") or {}).items()})
    entries = [
        {"keys": rule["negates"], "polarity": "negative", "patterns": rule["patterns"]} for rule in data["rules"]
    ]
    return {"macros": macros, "entries": entries}


@cache
def load_lexicon(extra: Path | None = None) -> Lexicon:
    """Compile the packaged normality table and synonyms, with the entries of the user's file ``extra`` tried first.

    The user's file may define its own ``macros``; the packaged macros are available to it as well.

    Raises:
        ConfigError: if a file is missing or malformed, names an unknown condition or has a bad pattern.
    """
    known = set(condition_keys())
    base, base_where = _read_yaml(None)
    parsed = _parse_entries(_normality(base), "cmrclip/text/normality.yaml", known)
    parsed += _parse_entries(base, base_where, known)
    if extra is not None:
        user, where = _read_yaml(extra)
        user = {**user, "macros": {**(base.get("macros") or {}), **(user.get("macros") or {})}}
        parsed = _parse_entries(user, where, known) + parsed
    scanner = PhraseScanner([(f"e{i}", pats) for i, (_, pats) in enumerate(parsed)])
    return Lexicon(entries=tuple(entry for entry, _ in parsed), scanner=scanner)
