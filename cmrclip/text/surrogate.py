"""Consistent surrogates for identifiers: fake names and places, shifted dates, same-shape numbers.

Within one :class:`Surrogates` (one study or patient, keyed by a secret string) the same name always becomes the
same fake name, every date moves by the same number of days (the per-patient offset, between 30 and 365 days back),
and IDs and phone numbers keep their shape (letters stay letters, digits digits, separators stay). Ages over 89
become "90+". Nothing original survives: a surrogate that equals its original is redrawn.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from cmrclip.text.phi_rules import MONTH

__all__ = ["Surrogates"]

_NAMES = [
    "Harper",
    "Quinn",
    "Ellis",
    "Rowe",
    "Marsh",
    "Dale",
    "Finch",
    "Lowell",
    "Sutton",
    "Pryce",
    "Holt",
    "Vance",
    "Wren",
    "Tate",
    "Ashby",
    "Corbin",
    "Dunmore",
    "Everly",
    "Fenwick",
    "Garrow",
    "Hadley",
    "Irwin",
    "Jarvis",
    "Kendrick",
    "Lyle",
    "Merritt",
    "Norwood",
    "Oakes",
    "Penrose",
    "Rudd",
    "Selby",
    "Thorne",
    "Upton",
    "Wardell",
]
_PLACES = [
    "Eastmoor",
    "Highfield",
    "Larchmont",
    "Millbrook",
    "Stonebridge",
    "Fairhaven",
    "Brookfield",
    "Kingsmere",
    "Ashgrove",
    "Hollins",
]
_KEEP_WORDS = re.compile(
    r"^(?:dr|doctor|prof|professor|a/prof|mr|mrs|ms|miss|mx|sister|nurse|md|phd|mbbs|frcp|frcr|fracp|facc|fesc|"
    r"rn|st|saint|university|hospital|general|health|regional|private|imaging|cardiology|"
    r"clinic|institute|trust|centre|center|heart|medical|klinikum|klinik|of|the|district|board|street|road|avenue|"
    r"lane|way|close|crescent|grove|gardens|mews|terrace|place|court|drive)\.?$",
    re.IGNORECASE,
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DATE_PART = re.compile(rf"(?P<month>{MONTH})\.?|(?P<num>\d+)(?P<ord>st|nd|rd|th)?", re.IGNORECASE)


def _ordinal(day: int) -> str:
    return "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].islower():
        return word.lower()
    return word


class Surrogates:
    """Surrogate values for one patient or study, consistent across calls.

    Args:
        key: a secret per patient (e.g. the patient ID with a site salt); the same key gives the same surrogates
            and the same date offset.
    """

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")
        self._seen: dict[tuple[str, str], str] = {}
        self.offset_days = 30 + self._draw("offset", "days") % 336

    def _draw(self, kind: str, value: str) -> int:
        digest = hmac.new(self._key, f"{kind}\0{value.lower()}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big")

    def _pick(self, kind: str, value: str, pool: list[str]) -> str:
        start = self._draw(kind, value)
        for i in range(len(pool)):
            choice = pool[(start + i) % len(pool)]
            if choice.lower() != value.lower():
                return choice
        return pool[0]

    def word(self, kind: str, word: str) -> str:
        """A fake name (``kind`` name) or place word for ``word``, the same one every time."""
        if _KEEP_WORDS.match(word):
            return word
        pool = _PLACES if kind in ("institution", "address") else _NAMES
        fake = self._pick(kind, word.rstrip("."), pool)
        if len(word.rstrip(".")) == 1:
            return fake[0] + word[1:]
        return _same_case(fake, word)

    def shape(self, kind: str, value: str) -> str:
        """Letters -> letters and digits -> digits (drawn from the key), separators kept; never the original."""
        key = (kind, value)
        if key not in self._seen:
            draw = self._draw(kind, value)
            out = []
            for i, ch in enumerate(value):
                n = (draw >> (i % 56)) + i * 7
                if ch.isdigit():
                    out.append(str((int(ch) + 1 + n % 9) % 10))
                elif ch.isalpha() and ch.isascii():
                    letter = chr(ord("A") + (ord(ch.upper()) - ord("A") + 1 + n % 25) % 26)
                    out.append(letter if ch.isupper() else letter.lower())
                else:
                    out.append(ch)
            self._seen[key] = "".join(out)
        return self._seen[key]

    def date(self, value: str) -> str | None:
        """``value`` moved back by the offset, written in the same format; ``None`` if it cannot be read."""
        parts = list(_DATE_PART.finditer(value))
        month_words = [p for p in parts if p.group("month")]
        nums = [p for p in parts if p.group("num")]
        try:
            roles = self._roles(month_words, nums)
            day = int(roles["day"].group("num")) if "day" in roles else 15
            if month_words:
                month = _MONTHS.index(month_words[0].group("month")[:3].lower()) + 1
            else:
                month = int(roles["month"].group("num"))
            year = int(roles["year"].group("num")) if "year" in roles else 2000
            year += 2000 if year < 100 and year <= 40 else 1900 if year < 100 else 0
            shifted = dt.date(year, month, day) - dt.timedelta(days=self.offset_days)
        except (ValueError, KeyError):
            return None
        return self._write(value, roles, month_words, shifted)

    @staticmethod
    def _roles(month_words: list[re.Match[str]], nums: list[re.Match[str]]) -> dict[str, re.Match[str]]:
        if month_words:
            roles = {}
            for part in nums:
                text = part.group("num")
                roles["year" if len(text) == 4 or "day" in roles else "day"] = part
            return roles
        if len(nums) == 3:
            first, second, third = nums
            if len(first.group("num")) == 4:
                return {"year": first, "month": second, "day": third}
            if int(second.group("num")) > 12:
                return {"month": first, "day": second, "year": third}
            return {"day": first, "month": second, "year": third}
        if len(nums) == 2:
            return {"month": nums[0], "year": nums[1]}
        raise ValueError("not a date")

    @staticmethod
    def _write(value: str, roles: dict[str, re.Match[str]], months: list[re.Match[str]], new: dt.date) -> str:
        edits = []
        for role, part in roles.items():
            text = part.group("num")
            number = {"day": new.day, "month": new.month, "year": new.year}[role]
            written = str(number % 100 if role == "year" and len(text) == 2 else number).zfill(len(text))
            suffix = _ordinal(number) if part.group("ord") else ""
            edits.append((part.start(), part.end(), written + _same_case(suffix, part.group("ord") or "")))
        if months:
            word = months[0].group("month")
            full = dt.date(2000, new.month, 1).strftime("%B")
            written = full if len(word) > 4 or word.lower() == full.lower() else full[:3]
            edits.append((months[0].start("month"), months[0].end("month"), _same_case(written, word)))
        for start, end, text in sorted(edits, reverse=True):
            value = value[:start] + text + value[end:]
        return value

    def replace(self, kind: str, value: str) -> str:
        """The surrogate for one identifier span of ``kind``."""
        if kind == "date":
            return self.date(value) or "[DATE]"
        if kind == "age":
            return re.sub(r"\d+", "90+", value, count=1)
        if kind == "email":
            return f"{self.word('name', value.split('@', 1)[0]).lower()}@example.org"
        if kind == "url":
            return f"https://example.org/{self.shape(kind, 'r' + str(self._draw(kind, value) % 10**6))}"
        if kind in ("name", "institution", "address"):
            return re.sub(r"[\w'’]+\.?", lambda m: self._token(kind, m.group(0)), value)
        return self.shape(kind, value)

    def _token(self, kind: str, token: str) -> str:
        """A word becomes a fake word; a token with digits (house number, postcode) keeps its shape."""
        if any(ch.isdigit() for ch in token):
            return self.shape("digits", token)
        return self.word(kind, token)
