"""De-identification of keys: patient and study identifiers become salted hashes; the salt is never stored."""

from __future__ import annotations

import csv
import hashlib
import hmac
import logging
from collections.abc import Iterable
from pathlib import Path

from cmrclip.errors import ConfigError

__all__ = ["KEY_LENGTH", "hash_key", "redact", "write_crosswalk"]

logger = logging.getLogger(__name__)

KEY_LENGTH = 16
"""Hex characters in a study or patient key (64 bits)."""


def hash_key(identifier: str, salt: str) -> str:
    """Return the salted key of an identifier: the first 16 hex characters of HMAC-SHA256(salt, identifier).

    The same identifier and salt always give the same key, so reports and labels keyed by accession number or
    patient ID join to the store when hashed with the same salt. Leading/trailing spaces are ignored.

    Raises:
        ConfigError: if the salt is empty (unsalted hashes of MRNs can be reversed by enumeration).
    """
    if not salt:
        raise ConfigError("an empty salt makes keys reversible; pass --salt (keep it secret, outside the store)")
    digest = hmac.new(salt.encode("utf-8"), identifier.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:KEY_LENGTH]


def write_crosswalk(path: Path, rows: Iterable[tuple[str, str, str, str]]) -> Path:
    """Write the identifier crosswalk (only on request; it re-identifies the store, so keep it elsewhere).

    Args:
        path: CSV file to write.
        rows: ``(study_key, study identifier, patient_key, patient identifier)`` tuples.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["study_key", "study_id", "patient_key", "patient_id"])
        writer.writerows(sorted(set(rows)))
    logger.warning("wrote the identifier crosswalk %s: it re-identifies the store; keep it outside", path)
    return path


def redact(text: str, replacements: dict[str, str], min_length: int = 4) -> str:
    """Replace every identifier in ``text`` by its key (longest first; identifiers under ``min_length`` skipped).

    Used on file names that go into the fault report: input folders are often named after MRNs or accessions.
    """
    for ident in sorted(replacements, key=len, reverse=True):
        if len(ident) >= min_length and ident in text:
            text = text.replace(ident, replacements[ident])
    return text
