"""Report text clean-up: robust decoding of stored bytes, whitespace, units and common abbreviations."""

from __future__ import annotations

import codecs
import logging
import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["DecodedText", "decode_report", "expand_abbreviations", "is_all_caps", "normalize_text"]

logger = logging.getLogger(__name__)

_FALLBACK_HANDLER = "cmrclip-cp1252"


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode the bytes UTF-8 rejected as cp1252 (latin-1 for the five bytes cp1252 leaves undefined)."""
    assert isinstance(error, UnicodeDecodeError)  # noqa: S101 - registered for decoding only
    chunk = error.object[error.start : error.end]
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in chunk), error.end


codecs.register_error(_FALLBACK_HANDLER, _cp1252_fallback)

_CHAR_MAP = str.maketrans(
    {
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\t": " ",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": " - ",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2022": "-",
        "\u00b2": "2",
        "\u00b3": "3",
        "\u2248": "approximately ",
        "\u2264": "<=",
        "\u2265": ">=",
        "\ufeff": "",
        "\r": "\n",
    }
)

_UNIT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d)\s*(?:ml|mls|cc)\b", re.IGNORECASE), r"\1 mL"),
    (re.compile(r"\bmL\s*/\s*m\s*\^?2\b", re.IGNORECASE), "mL/m2"),
    (re.compile(r"(\d)\s*g\s*/\s*m\s*\^?2\b", re.IGNORECASE), r"\1 g/m2"),
    (re.compile(r"(\d)\s+%"), r"\1%"),
    (re.compile(r"(\d)\s*mm\b", re.IGNORECASE), r"\1 mm"),
    (re.compile(r"(\d)\s*cm\b", re.IGNORECASE), r"\1 cm"),
    (re.compile(r"~\s*(?=\d)"), "approximately "),
)

# Substrings (of the lower-cased text) without which a unit rule cannot match: the rule is skipped.
_UNIT_HINTS = (("ml", "cc"), ("/",), ("/",), ("%",), ("mm",), ("cm",), ("~",))
_ABBREVIATIONS = {
    "w/o": "without",
    "s/p": "status post",
    "h/o": "history of",
    "r/o": "rule out",
    "c/w": "consistent with",
    "c/f": "concerning for",
    "b/l": "bilateral",
    "w/": "with",
    "hx": "history",
    "mod": "moderate",
    "sev": "severe",
    "approx": "approximately",
}
_ABBREVIATION = re.compile(
    r"(?<!\w)(?:(?:w/o|s/p|h/o|r/o|c/w|c/f|b/l|hx)(?!\w)|w/(?=\s)|(?:mod|sev|approx)\.?(?=\s))", re.IGNORECASE
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_DROP_UPPER = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DROP_LOWER = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz")
_ABBREVIATION_HINTS = ("/", "hx", "mod.", "mod ", "sev.", "sev ", "approx")
_SPACES = re.compile(r"[ \f\v]+")
_LINE_EDGES = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


@dataclass(frozen=True)
class DecodedText:
    """Text decoded from stored bytes, with what had to be done to decode it."""

    text: str
    encoding: str
    flags: tuple[str, ...] = field(default_factory=tuple)


def decode_report(data: bytes | str) -> DecodedText:
    """Decode report bytes: UTF-8, and the bytes that are not UTF-8 as cp1252 (never fails).

    Args:
        data: raw bytes as stored (or an already decoded string, passed through).

    Returns:
        The text and a ``non_utf8`` flag when bytes were not UTF-8 (they are read as cp1252, byte by byte, so a
        file mixing both keeps its UTF-8 parts: flag ``mixed_encoding``); control characters other than newlines
        are removed (flag ``control_chars``; ``binary`` when they are more than a tenth of the text).
    """
    flags: list[str] = []
    if isinstance(data, str):
        text, encoding = data, "str"
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            flags.append("non_utf8")
            # Valid UTF-8 runs stay UTF-8 ("José"), the bytes between them are cp1252 ("M\xfcller"): mixed files.
            text, encoding = data.decode("utf-8", errors=_FALLBACK_HANDLER), "cp1252"
            if any(ord(ch) > 0x7F for ch in data.decode("utf-8", errors="ignore")):
                flags.append("mixed_encoding")
                encoding = "utf-8+cp1252"
            logger.debug("report decoded as %s", encoding)
    cleaned, removed = _CONTROL.subn("", text)
    if removed > max(8, len(text) // 10):
        flags.append("binary")
    if "\ufffd" in cleaned:
        flags.append("replacement_chars")
    if removed:
        flags.append("control_chars")
    return DecodedText(text=cleaned, encoding=encoding, flags=tuple(flags))


def normalize_text(text: str) -> str:
    """Normalise unicode punctuation, whitespace and units; keep line structure (section headers need it).

    ``"LVEF 55 %"`` becomes ``"LVEF 55%"``, ``"120ml"`` becomes ``"120 mL"``, ``"g/m²"`` becomes ``"g/m2"``.
    """
    text = text.translate(_CHAR_MAP)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
    low = text.lower()
    for hint, (pattern, repl) in zip(_UNIT_HINTS, _UNIT_RULES, strict=True):
        if any(h in low for h in hint):
            text = pattern.sub(repl, text)
    text = _LINE_EDGES.sub("\n", _SPACES.sub(" ", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def expand_abbreviations(text: str) -> str:
    """Expand shorthand that changes meaning for the labeler (``s/p``, ``w/o``, ``h/o``, ``r/o``, ``c/w``, ...)."""
    low = text.lower()
    if not any(hint in low for hint in _ABBREVIATION_HINTS):
        return text
    return _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(0).lower().rstrip(".")], text)


def is_all_caps(text: str, threshold: float = 0.9) -> bool:
    """True when at least ``threshold`` of the ASCII letters (and at least 20 of them) are upper case."""
    upper = len(text) - len(text.translate(_DROP_UPPER))
    letters = upper + len(text) - len(text.translate(_DROP_LOWER))
    return letters >= 20 and upper / letters >= threshold
