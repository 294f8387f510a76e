"""Models: the MViT video tower, the BERT text tower, the CLIP model and loss, study heads, checkpoint conversion."""

from __future__ import annotations

__all__: list[str] = []
