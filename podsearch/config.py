"""Typed params sections: one frozen dataclass per params.yaml section, built and validated once by `from_section`.

Each field is cast to its annotated type (YAML 1.1 reads `5e-5`, as `dvc exp run -S train.learning_rate=5e-5`
writes it, as a string); an unknown, missing or ill-typed key is a ConfigError naming `section.key` and what was
expected, so a typo in params.yaml fails before any work starts. Reading a section through its dataclass reads every
field, which is what the params audit of the end-to-end test checks against dvc.yaml.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from podsearch.errors import PodsearchError

T = TypeVar("T")
_CASTS = {"int": int, "float": float, "str": str}


class ConfigError(PodsearchError):
    """A params.yaml section that does not fit its dataclass."""


def _cast(value: Any, annotation: str, where: str) -> Any:
    options = [part.strip() for part in str(annotation).split("|")]
    if value is None:
        if "None" in options:
            return None
        raise ConfigError(f"params.yaml {where}: expected {options[0]}, got null")
    kind = options[0]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"params.yaml {where}: expected true or false, got {value!r}")
    if kind.startswith("list"):
        if isinstance(value, list):
            return [str(v) for v in value] if kind == "list[str]" else value
        raise ConfigError(f"params.yaml {where}: expected a list, got {value!r}")
    cast = _CASTS.get(kind)
    if cast is None:
        return value
    if cast is not str and isinstance(value, bool):  # YAML `yes` is not a number
        raise ConfigError(f"params.yaml {where}: expected {kind}, got {value!r}")
    try:
        result = cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"params.yaml {where}: expected {kind}, got {value!r}") from None
    if cast is int and isinstance(value, float) and value != result:
        raise ConfigError(f"params.yaml {where}: expected a whole number, got {value!r}")
    return result


def from_section(cls: type[T], params: Mapping[str, Any] | None, section: str, strict: bool = True) -> T:
    """`cls` (a dataclass) from one params.yaml section. strict: keys the dataclass does not know are an error (a
    misspelt key would otherwise be silently ignored); missing keys take the field's default, if it has one."""
    params = params or {}
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(params) - set(known))
    if strict and unknown:
        raise ConfigError(f"params.yaml {section}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values = {}
    for name, field in known.items():
        if name in params:
            values[name] = _cast(params[name], field.type, f"{section}.{name}")
        elif field.default is MISSING and field.default_factory is MISSING:
            raise ConfigError(f"params.yaml {section}.{name}: missing")
    return cls(**values)
