"""Progress reporting from the library without printing: long jobs call a callback that the CLI draws as a bar."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressFn", "null_progress"]

ProgressFn = Callable[[str, int, int], None]
"""``progress(task, done, total)``: ``task`` names the stage (e.g. ``"ingest"``); ``done`` of ``total`` units."""


def null_progress(task: str, done: int, total: int) -> None:
    """Ignore progress (the default for library calls)."""
