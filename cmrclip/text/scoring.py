"""Score the labeller and the de-identifier on a gold report set (``cmrclip/text/testdata/*.jsonl``).

Labels: micro-F1 of ``positive`` over all conditions, recall and F1 of explicit ``negative`` labels, and exact
current LVEF. De-identification: planted identifiers left in the output (a leak is any distinctive part of the
identifier still in the text: a name part, two adjacent parts of a date, a number group of an ID or phone, a place
word of an address or institution) and the share of measurement strings kept.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cmrclip.conditions import condition_keys

__all__ = ["DeidScore", "LabelScore", "leak_patterns", "load_gold", "score_deid", "score_labels"]

TESTDATA = Path(__file__).parent / "testdata"
_TITLES = frozenset(["dr", "prof", "mr", "mrs", "ms", "miss", "md", "phd", "fracp", "a/prof", "frcp", "frcr", "mbbs"])
_GENERIC = frozenset(
    [
        "general",
        "hospital",
        "cardiology",
        "university",
        "heart",
        "centre",
        "center",
        "private",
        "health",
        "imaging",
        "klinikum",
        "district",
        "board",
        "regional",
        "institute",
        "trust",
        "foundation",
        "department",
        "clinic",
        "medical",
        "st",
        "saint",
        "the",
        "and",
        "of",
        "flat",
        "unit",
        "apt",
        "gardens",
        "crescent",
        "terrace",
        "grove",
        "close",
        "mews",
        "road",
        "way",
        "pike",
        "hollow",
        "old",
        "mill",
        "rue",
        "des",
        "street",
        "avenue",
        "lane",
        "drive",
        "park",
        "cross",
        "ridge",
        "vale",
        "flats",
    ]
)
_DATE_FILLER = frozenset({"the", "of"})


def load_gold(name: str) -> list[dict[str, Any]]:
    """The rows of a JSONL test set in ``cmrclip/text/testdata``."""
    text = (TESTDATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


@dataclass
class LabelScore:
    """Label quality on one set; ``lvef_wrong`` lists ``(id, gold, predicted)``."""

    positive_f1: float
    negative_recall: float
    negative_f1: float
    lvef_exact: float
    lvef_stated: int
    lvef_wrong: list[tuple[Any, Any, Any]] = field(default_factory=list)
    misses: list[tuple[Any, str, Any, Any]] = field(default_factory=list)
    measures_exact: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """A one-line summary."""
        right = self.lvef_stated - sum(g is not None for _, g, _ in self.lvef_wrong)
        return (
            f"positive micro-F1 {self.positive_f1:.3f}, negatives correct {self.negative_recall:.3f} "
            f"(F1 {self.negative_f1:.3f}), LVEF exact {right}/{self.lvef_stated} ({self.lvef_exact:.3f}), "
            f"LVEF given where none stated {sum(g is None for _, g, _ in self.lvef_wrong)}"
        )


def score_labels(rows: Iterable[dict[str, Any]], label: Callable[[str], Any]) -> LabelScore:
    """Compare ``label(text)`` (a :class:`~cmrclip.text.labeler.ReportLabels`) with the gold of each row."""
    pos, neg = [0, 0, 0], [0, 0, 0]
    stated = exact = 0
    wrong, misses, measures = [], [], Counter()
    measure_n = Counter()
    for row in rows:
        out = label(row["text"])
        for key in condition_keys():
            gold, pred = row["labels"].get(key), out.labels.get(key)
            for status, c in (("positive", pos), ("negative", neg)):
                c[0] += gold == status and pred == status
                c[1] += gold != status and pred == status
                c[2] += gold == status and pred != status
            if (gold != pred and "positive" in (gold, pred)) or gold == "negative" != pred:
                misses.append((row["id"], key, gold, pred))
        gold_ef = row["lvef"]
        stated += gold_ef is not None
        ok = out.lvef == gold_ef or (gold_ef is not None and out.lvef is not None and abs(out.lvef - gold_ef) < 0.01)
        exact += ok and gold_ef is not None
        if not ok:
            wrong.append((row["id"], gold_ef, out.lvef))
        given = out.measurements.to_dict()
        for name, value in (row.get("measures") or {}).items():
            measure_n[name] += 1
            measures[name] += given.get(name) is not None and abs(given[name] - value) < 0.51
    return LabelScore(
        positive_f1=_f1(*pos),
        negative_recall=neg[0] / (neg[0] + neg[2]) if neg[0] + neg[2] else 1.0,
        negative_f1=_f1(*neg),
        lvef_exact=exact / stated if stated else 1.0,
        lvef_stated=stated,
        lvef_wrong=wrong,
        misses=misses,
        measures_exact={k: measures[k] / n for k, n in sorted(measure_n.items())},
    )


@cache
def leak_patterns(kind: str, value: str) -> tuple[re.Pattern[str], ...]:
    """Patterns whose presence in de-identified text means the identifier ``value`` of ``kind`` leaked."""
    words = re.findall(r"[^\W_]+(?:['’][^\W_]+)?", value)
    parts: list[str] = [re.escape(value)]
    if kind == "name":
        parts += [re.escape(w) for w in words if len(w) >= 2 and w.lower() not in _TITLES]
    elif kind in ("address", "institution"):
        parts += [re.escape(w) for w in words if (len(w) >= 3 and w.lower() not in _GENERIC and not w.isdigit())]
        parts += [re.escape(w) for w in words if len(w) >= 3 and any(ch.isdigit() for ch in w)]
    elif kind in ("mrn", "accession", "phone"):
        digits = re.findall(r"\d+", value)
        parts += [re.escape(w) for w in words if len(w) >= 4 and any(ch.isdigit() for ch in w)]
        if len(digits) > 1:
            parts.append(r"\D{0,4}".join(digits))
    elif kind == "date":
        content = [w for w in words if w.lower() not in _DATE_FILLER]
        sep = r"\W+(?:of\W+)?(?:the\W+)?"
        parts += [sep.join(map(re.escape, content[i : i + 2])) for i in range(len(content) - 1)]
    elif kind == "age":
        number = re.search(r"\d+", value).group(0)  # type: ignore[union-attr]
        parts += [rf"{number}(?=[\s-]*(?:years?|yrs?|y/?o|yo)\b)", rf"aged\s+{number}"]
    elif kind == "email":
        parts.append(re.escape(value.split("@", maxsplit=1)[0]))
    return tuple(re.compile(rf"(?<![^\W_]){p}(?![^\W_])", re.IGNORECASE) for p in parts)


@dataclass
class DeidScore:
    """Identifiers planted and left per kind, measurement strings kept, and the leaks found."""

    planted: Counter[str]
    left: Counter[str]
    kept: int
    measurements: int
    leaks: list[tuple[Any, str, str]] = field(default_factory=list)

    @property
    def kept_share(self) -> float:
        """Measurement strings kept / planted (1.0 when none)."""
        return self.kept / self.measurements if self.measurements else 1.0

    def line(self) -> str:
        """A one-line summary."""
        per_kind = ", ".join(f"{k} {self.left[k]}/{n}" for k, n in sorted(self.planted.items()))
        return (
            f"identifiers left {sum(self.left.values())}/{sum(self.planted.values())} ({per_kind}); "
            f"measurements kept {self.kept}/{self.measurements} ({self.kept_share:.4f})"
        )


def score_deid(rows: Iterable[dict[str, Any]], deid: Callable[[str], str]) -> DeidScore:
    """Run ``deid(text) -> text`` on every row with ``identifiers`` and ``keep``; count leaks and kept measurements."""
    planted, left = Counter(), Counter()
    kept = total = 0
    leaks = []
    for row in rows:
        out = deid(row["text"])
        for ident in row.get("identifiers", ()):
            planted[ident["kind"]] += 1
            hit = next((p.pattern for p in leak_patterns(ident["kind"], ident["text"]) if p.search(out)), None)
            if hit is not None:
                left[ident["kind"]] += 1
                leaks.append((row["id"], ident["kind"], ident["text"]))
        need = Counter(k.lower() for k in row.get("keep", ()))
        low = out.lower()
        for string, n in need.items():
            total += n
            kept += min(n, len(re.findall(rf"(?<![\w.]){re.escape(string)}(?!\w)", low)))
    return DeidScore(planted=planted, left=left, kept=kept, measurements=total, leaks=leaks)
