import re
from dataclasses import dataclass, field
from typing import Literal

import pytest

from tinyvla.config import apply_overrides, from_dict
from tinyvla.errors import ConfigError
from tinyvla.pipeline import build_run_config


@dataclass
class Inner:
    width: int = 4
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    lr: float = 1e-3
    flag: bool = False
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_overrides_coerce_cli_strings():
    cfg = apply_overrides(Outer(), {"lr": "3e-4", "flag": "true", "inner.width": "8", "inner.mode": "b"})
    assert cfg == Outer(lr=3e-4, flag=True, inner=Inner(width=8, mode="b"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": 1}, "unknown config key nope"),
        ({"inner.nope": 1}, "unknown config key inner.nope"),
        ({"lr.x": 1}, "has no sub-keys"),
        ({"inner.width": "wide"}, "expected an integer"),
        ({"inner.mode": "c"}, "is not one of"),
        ({"flag": "maybe"}, "expected true/false"),
    ],
)
def test_bad_overrides_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Outer(), overrides)


def test_from_dict_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(Outer, {"lr": 1.0, "extra": 2})
    with pytest.raises(ConfigError, match="expected a number"):
        from_dict(Outer, {"lr": "fast"})


def test_presets_and_policy_validation():
    assert build_run_config("tinyvla", "seed").policy.fusion == "pool_add"
    assert build_run_config("tinyvla", "tiny").policy.fusion == "instruction_pool_add"
    with pytest.raises(ConfigError, match="unknown preset"):
        build_run_config("tinyvla", "huge")
    with pytest.raises(ConfigError, match="unknown policy type"):
        build_run_config("nope", "tiny")
    with pytest.raises(ConfigError, match="divisible"):
        build_run_config("tinyvla", "tiny", {"policy.vision_heads": 5})
    with pytest.raises(ConfigError, match="keys start with"):
        build_run_config("tinyvla", "tiny", {"model.width": 3})


def test_user_preset_file(tmp_path):
    preset = tmp_path / "mine.json"
    preset.write_text('{"base": "seed", "policy": {"vision_layers": 2}, "train": {"lr": 0.001}}')
    run = build_run_config("tinyvla", str(preset), {"train.steps": "7"})
    assert run.policy.fusion == "pool_add" and run.policy.vision_layers == 2
    assert run.train.lr == 1e-3 and run.train.steps == 7


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"policy": {"vision_layerz": 2}}', "unknown config key policy.vision_layerz"),
        ('{"policy": {"vision_layers": "two"}}', "expected an integer"),
        ('{"model": {}}', "unknown key(s) model"),
        ('{"policy": 3}', "must be an object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_preset_files(tmp_path, content, message):
    preset = tmp_path / "bad.json"
    preset.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_run_config("tinyvla", str(preset))
    with pytest.raises(ConfigError, match="does not exist"):
        build_run_config("tinyvla", str(tmp_path / "missing.json"))
