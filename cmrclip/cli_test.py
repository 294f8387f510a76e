from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from typer.testing import CliRunner

import cmrclip
from cmrclip.cli import app

REPO = Path(cmrclip.__file__).resolve().parent.parent
runner = CliRunner()


def test_help_lists_jobs():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "version" in result.output


def test_every_script_entry_point_imports():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
