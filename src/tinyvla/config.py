"""Typed dataclass configs, strict (de)serialisation and the command-line override bridge.

Overrides are dotted keys matching dataclass fields, e.g. `--policy.vision_width 384` or
`--train.lr 1e-3`. Unknown keys, wrong types and values outside a `Literal` are `ConfigError`s.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from tinyvla.errors import ConfigError


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Turn `value` (a JSON value or a CLI string) into type `tp`, or raise ConfigError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        for c in choices:
            if value == c or (isinstance(value, str) and str(c) == value):
                return c
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin in (list, tuple):
        (inner, *_) = get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [coerce(v, inner, key) for v in value]
    if origin is dict or tp is dict:
        if isinstance(value, str):  # from the command line: a JSON object
            import json

            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(f"{key}: expected a JSON object, got {value!r}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value)) if float(value).is_integer() else int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp}")


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Strictly build dataclass `cls` from a dict: unknown keys and bad types are errors."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; valid: "
                          f"{', '.join(prefix + k for k in types_)}")
    kwargs = {k: coerce(v, types_[k], prefix + k) for k, v in data.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None
    return obj


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def apply_overrides(obj: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass `obj` with dotted-key overrides applied (strictly)."""
    data = to_dict(obj)
    types_ = _field_types(type(obj))
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in types_:
            raise ConfigError(f"unknown config key {prefix}{key}; valid: {', '.join(prefix + k for k in types_)}")
        if rest:
            if not _is_dataclass_type(types_[head]):
                raise ConfigError(f"unknown config key {prefix}{key}: {prefix}{head} has no sub-keys")
            nested.setdefault(head, {})[rest] = value
        else:
            data[head] = value
    for head, sub in nested.items():
        data[head] = to_dict(apply_overrides(getattr(obj, head), sub, prefix=f"{prefix}{head}."))
    return from_dict(type(obj), data, prefix=prefix)
