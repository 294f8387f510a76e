"""Imports flow only along synth -> ingest -> ... -> evaluate -> serve; cli and demo sit on top of them all."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
STAGES = ["synth", "ingest", "data", "text", "models", "segment", "train", "evaluate", "serve"]
ANYWHERE = {"config", "errors", "conditions", "progress", "__init__"}


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "cmrclip" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_flow_forward_only():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if path.name.endswith("_test.py") or path.name == "conftest.py" or rel.parts[0] not in STAGES:
            continue
        own = STAGES.index(rel.parts[0])
        for module in _imports(path):
            stage = _stage_of(module)
            if stage is None or stage in ANYWHERE:
                continue
            if stage in ("cli", "demo") or (stage in STAGES and STAGES.index(stage) > own):
                bad.append(f"{rel} imports {module}")
    assert not bad, "backward imports:\n" + "\n".join(bad)


def test_top_level_modules_import_no_stage():
    for name in ANYWHERE - {"__init__"}:
        for module in _imports(PACKAGE / f"{name}.py"):
            assert _stage_of(module) in (None, *ANYWHERE), f"{name}.py imports {module}"
