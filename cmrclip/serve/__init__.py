"""Use a trained study model: predictions (``predict``), attention maps (``explain``) and the web service (``api``)."""

from __future__ import annotations

__all__: list[str] = []
