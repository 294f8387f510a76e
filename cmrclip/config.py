"""YAML configs validated by pydantic: packaged defaults < ``--config FILE`` < ``--set a.b=c`` overrides."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from cmrclip.errors import ConfigError

__all__ = [
    "StrictModel",
    "apply_overrides",
    "load_config",
    "packaged_yaml",
    "save_config",
]

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound="StrictModel")


class StrictModel(BaseModel):
    """Base of every config schema: unknown keys are errors, and values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def packaged_yaml(name: str) -> dict[str, Any]:
    """Read a YAML file shipped in ``cmrclip/configs`` (``name`` like ``"pretrain.yaml"`` or ``"models/tiny.yaml"``).

    Raises:
        ConfigError: if no such packaged file exists.
    """
    ref = resources.files("cmrclip").joinpath("configs", *name.split("/"))
    if not ref.is_file():
        raise ConfigError(f"no packaged config {name!r} in cmrclip/configs; check the name")
    return yaml.safe_load(ref.read_text(encoding="utf-8")) or {}


def _parse_value(text: str) -> Any:
    """Parse an override value as YAML (numbers, booleans, lists), else keep the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a nested dict (a copy is returned).

    Raises:
        ConfigError: if an override is not of the form ``key=value``.
    """
    out = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form a.b=c")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = _parse_value(value)
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_paths(data: Any, base_dir: Path) -> Any:
    """Make every relative value of a key ending in ``_path``/``_dir``/``root`` absolute against ``base_dir``."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            is_path_key = key.endswith(("_path", "_dir", "root", "_file"))
            if is_path_key and isinstance(value, str) and value and not Path(value).is_absolute():
                out[key] = str((base_dir / value).resolve())
            else:
                out[key] = _resolve_paths(value, base_dir)
        return out
    return data


def load_config(
    schema: type[ConfigT],
    path: Path | None = None,
    overrides: list[str] | None = None,
    defaults: str | None = None,
) -> ConfigT:
    """Build a validated config: packaged ``defaults`` YAML, then the file at ``path``, then ``overrides``.

    Relative paths in the file (keys ending in ``_path``, ``_dir``, ``_file`` or ``root``) resolve against the
    file's folder.

    Raises:
        ConfigError: if the file is missing or not YAML, or the result does not validate.
    """
    data: dict[str, Any] = packaged_yaml(defaults) if defaults else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = _deep_merge(data, _resolve_paths(loaded, path.parent.resolve()))
    data = apply_overrides(data, overrides or [])
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        where = f" ({path})" if path else ""
        raise ConfigError(f"invalid {schema.__name__}{where}:\n{exc}") from exc


def save_config(config: BaseModel, out_dir: Path, seed: int | None = None) -> Path:
    """Write the resolved config, cmrclip version and seed beside a run's outputs; return the file written."""
    from cmrclip import __version__

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "config.resolved.yaml"
    body = {"cmrclip_version": __version__, "seed": seed, "config": config.model_dump(mode="json")}
    target.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    logger.info("wrote resolved config to %s", target)
    return target
