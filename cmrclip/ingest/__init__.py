"""Ingestion: DICOM/NIfTI cine studies into a de-identified study store (docs/ARCHITECTURE.md §2)."""

from __future__ import annotations

from cmrclip.ingest.store import StudyFile, StudyRecord, StudyStore, ViewData, ViewMeta

__all__ = ["StudyFile", "StudyRecord", "StudyStore", "ViewData", "ViewMeta"]
