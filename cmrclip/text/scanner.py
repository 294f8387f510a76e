"""Fast scanning of many alternative phrases: one small regex per first character instead of one huge alternation.

Python's ``re`` tries every branch of an alternation at every position. With a few hundred phrases that dominates
labelling time. :class:`PhraseScanner` computes which characters each phrase can start with (from the parsed
pattern), builds one regex per starting character, and tries only the matching one at each word start. The
matches are the same as ``finditer`` of the combined alternation at word boundaries (leftmost, first branch wins,
non-overlapping).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

try:  # Python >= 3.11 names the parser re._parser (formerly sre_parse)
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - older layout
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = ["PhraseScanner", "first_chars"]

_WORD_START = re.compile(r"(?<![a-z0-9])[a-z0-9?]")
_ZERO_WIDTH = {_sre.ASSERT, _sre.ASSERT_NOT, _sre.AT}
_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}

FirstSet = frozenset[str] | None


def _first_in(av: list) -> FirstSet:
    chars: set[str] = set()
    for op, value in av:
        if op == _sre.LITERAL:
            chars.add(chr(value))
        elif op == _sre.RANGE and value[1] - value[0] < 256:
            chars.update(chr(c) for c in range(value[0], value[1] + 1))
        else:
            return None
    return frozenset(chars)


def _first_op(op: object, av: object) -> tuple[FirstSet, bool]:  # noqa: PLR0911 - one return per opcode
    if op == _sre.LITERAL:
        return frozenset(chr(av)), False  # type: ignore[arg-type]
    if op == _sre.IN:
        return _first_in(av), False  # type: ignore[arg-type]
    if op == _sre.BRANCH:
        chars: set[str] = set()
        nullable = False
        for branch in av[1]:  # type: ignore[index]
            first, empty = _first_seq(branch)
            if first is None:
                return None, False
            chars |= first
            nullable |= empty
        return frozenset(chars), nullable
    if op == _sre.SUBPATTERN:
        return _first_seq(av[-1])  # type: ignore[index]
    if op in _REPEATS:
        first, empty = _first_seq(av[2])  # type: ignore[index]
        return first, empty or av[0] == 0  # type: ignore[index]
    return None, False


def _first_seq(items: Sequence) -> tuple[FirstSet, bool]:
    chars: set[str] = set()
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        first, nullable = _first_op(op, av)
        if first is None:
            return None, False
        chars |= first
        if not nullable:
            return frozenset(chars), False
    return frozenset(chars), True


def first_chars(pattern: str) -> FirstSet:
    """The characters a match of ``pattern`` can start with, or ``None`` if any (or if it can match empty)."""
    first, nullable = _first_seq(_sre_parse.parse(pattern).data)
    return None if nullable else first


class PhraseScanner:
    """Find phrases of many named groups; ``scan`` yields matches whose ``lastgroup`` names the group.

    Args:
        groups: (name, patterns) in priority order; patterns must not contain capturing groups.
    """

    def __init__(self, groups: Sequence[tuple[str, Sequence[str]]]) -> None:
        per_char: dict[str | None, list[tuple[int, str, str]]] = {}
        for order, (name, patterns) in enumerate(groups):
            for pattern in patterns:
                for char in first_chars(pattern) or (None,):
                    per_char.setdefault(char, []).append((order, name, pattern))
        wildcard = per_char.pop(None, [])
        self._by_char = {char: self._compile(items + wildcard) for char, items in per_char.items()}
        self._default = self._compile(wildcard) if wildcard else None

    @staticmethod
    def _compile(items: list[tuple[int, str, str]]) -> re.Pattern[str]:
        grouped: dict[tuple[int, str], list[str]] = {}
        for order, name, pattern in sorted(items, key=lambda item: item[0]):
            grouped.setdefault((order, name), []).append(pattern)
        body = "|".join(f"(?P<{name}>{'|'.join(pats)})" for (_, name), pats in grouped.items())
        return re.compile(rf"(?:{body})(?![a-z0-9])")

    def scan(self, text: str) -> Iterator[re.Match[str]]:
        """Yield non-overlapping matches starting at word starts of ``text`` (lower-case), left to right."""
        end = 0
        for start in _WORD_START.finditer(text):
            pos = start.start()
            if pos < end:
                continue
            pattern = self._by_char.get(text[pos], self._default)
            if pattern is None:
                continue
            match = pattern.match(text, pos)
            if match:
                end = match.end()
                yield match
