"""Policy registry: `@register_policy("name")` on a Policy class, `make_policy(config, ...)` to build one.

Policy modules are imported lazily so that `tinyvla --help` stays fast and optional heavy
dependencies (transformers, peft) are only needed by the policies that use them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tinyvla.errors import ConfigError

if TYPE_CHECKING:
    from tinyvla.policies.base import Policy, PolicyConfig

# name -> module that registers it when imported
_LAZY: dict[str, str] = {
    "tinyvla": "tinyvla.policies.tiny_vla.modeling",
    "vla_adapter": "tinyvla.policies.vla_adapter.modeling",
}
_REGISTRY: dict[str, type["Policy"]] = {}


def register_policy(name: str):
    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"policy {name!r} registered twice")
        cls.name = name
        cls.config_class.type = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_policies() -> list[str]:
    return sorted(set(_LAZY) | set(_REGISTRY))


def get_policy_class(name: str) -> type["Policy"]:
    if name not in _REGISTRY:
        if name not in _LAZY:
            raise ConfigError(f"unknown policy type {name!r}; available: {', '.join(available_policies())}")
        importlib.import_module(_LAZY[name])
    return _REGISTRY[name]


def get_config_class(name: str) -> type["PolicyConfig"]:
    return get_policy_class(name).config_class


def make_policy(config: "PolicyConfig", **kwargs) -> "Policy":
    return get_policy_class(config.type)(config, **kwargs)
