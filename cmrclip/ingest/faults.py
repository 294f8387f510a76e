"""The fault table: every file, series or study that could not be (fully) used, with the reason."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Fault", "append_faults", "loses_data", "read_faults"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Fault:
    """One problem met during ingestion.

    Attributes:
        study: The hashed study key ("" when the file could not be attributed to a study).
        file: The file, series or archive concerned (display name; never a patient identifier).
        stage: ``scan``, ``series``, ``geometry``, ``pixels``, ``view``, ``write``, ``reports`` or ``labels``.
        reason: What went wrong, in words.
    """

    study: str
    file: str
    stage: str
    reason: str

    def to_json(self) -> str:
        """One JSON line with keys in a fixed order."""
        return json.dumps(asdict(self), ensure_ascii=False)


def append_faults(path: Path, faults: Iterable[Fault]) -> int:
    """Append faults to a JSON-lines report; return how many were written."""
    lines = [f.to_json() + "\n" for f in faults]
    if lines:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.writelines(lines)
    return len(lines)


def read_faults(path: Path) -> list[Fault]:
    """Read a JSON-lines fault report (empty list when the file does not exist).

    A line that is not a complete record (a run killed while appending) is skipped with a warning: the study it
    belonged to had no manifest row yet, so the next run processes it again and re-reports its faults.
    """
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        try:
            out.append(Fault(**json.loads(line)))
        except (ValueError, TypeError):  # a line torn by a killed run; its study is redone, so nothing is lost
            if line.strip():
                logger.warning("%s line %d is not a fault record (torn by a killed run?); skipped", path, n)
    return out


def loses_data(fault: Fault) -> bool:
    """True when the fault dropped cine data (a slice, a series).

    By convention such reasons end in ``"; dropped"``; ignored duplicates end in ``"; ignored"`` and superseded
    repeats in ``"; superseded"``.
    """
    return fault.reason.endswith("; dropped")
