"""The condition taxonomy (39 conditions by default), read from ``configs/conditions.yaml`` or a user's file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from cmrclip.config import packaged_yaml
from cmrclip.errors import ConfigError, LabelError

__all__ = ["Condition", "condition_keys", "load_conditions", "validate_label_names"]

CineVisibility = Literal["yes", "partly", "weak"]


@dataclass(frozen=True)
class Condition:
    """One condition of the label space."""

    key: str
    name: str
    cine: CineVisibility

    @property
    def cine_visible(self) -> bool:
        """True when the condition has a cine signature (``yes`` or ``partly``)."""
        return self.cine != "weak"


def _cine(value: object) -> str:
    """YAML reads a bare ``yes`` as True: accept it."""
    return "yes" if value is True else str(value)


def _parse(data: dict, source: str) -> tuple[Condition, ...]:
    items = data.get("conditions") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: expected a non-empty 'conditions:' list")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Condition(key=str(item["key"]), name=str(item["name"]), cine=_cine(item.get("cine", "yes"))))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{source}: condition #{i} needs 'key' and 'name' ({item!r})") from exc
        if out[-1].cine not in ("yes", "partly", "weak"):
            raise ConfigError(f"{source}: condition {out[-1].key!r} has cine={out[-1].cine!r}; use yes|partly|weak")
    keys = [c.key for c in out]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: duplicated condition keys")
    return tuple(out)


@cache
def _packaged() -> tuple[Condition, ...]:
    return _parse(packaged_yaml("conditions.yaml"), "cmrclip/configs/conditions.yaml")


def load_conditions(path: Path | None = None) -> tuple[Condition, ...]:
    """Return the taxonomy: the packaged one, or the one in the YAML file at ``path``.

    Raises:
        ConfigError: if the file is missing or malformed.
    """
    if path is None:
        return _packaged()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"conditions file {path} does not exist")
    return _parse(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def condition_keys(path: Path | None = None) -> list[str]:
    """Return the condition keys in taxonomy order."""
    return [c.key for c in load_conditions(path)]


def validate_label_names(names: list[str], path: Path | None = None) -> None:
    """Raise :class:`LabelError` naming every label that is not in the taxonomy."""
    known = set(condition_keys(path))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LabelError(
            f"unknown label name(s) {unknown}; known conditions are listed in cmrclip/configs/conditions.yaml"
        )
