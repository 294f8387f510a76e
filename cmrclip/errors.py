"""Exceptions that a user can cause. Each message says what went wrong, where, and how to fix it."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CmrclipError",
    "ConfigError",
    "DataError",
    "IngestError",
    "LabelError",
    "LeakageError",
    "ReportError",
    "StoreError",
]


class CmrclipError(Exception):
    """Base class of every error cmrclip raises for bad input or configuration."""


class ConfigError(CmrclipError):
    """A config file, override or option is invalid."""


class DataError(CmrclipError):
    """Input data (a file, study, table) cannot be used."""


class IngestError(DataError):
    """A DICOM/NIfTI file, series or study cannot be ingested."""


class StoreError(DataError):
    """The study store is missing, corrupt, or lacks what was asked for."""


class LabelError(DataError):
    """A label column or value is unknown or malformed."""


class LeakageError(DataError):
    """A study used to train a model (or a model upstream of it) is in the split the model is evaluated on."""


class ReportError(DataError):
    """A report cannot be read or processed."""


class CheckpointError(CmrclipError):
    """A checkpoint cannot be loaded: missing or unexpected keys, wrong shapes, or a conflicting option."""
