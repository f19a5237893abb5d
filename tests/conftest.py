import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "osmesa")  # headless rendering for Meta-World (Debian's libosmesa6)
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
torch.set_num_threads(min(2, torch.get_num_threads()))

# A model small enough that every test runs in seconds on a 2-core CPU; same code path as `tiny`.
TINY_OVERRIDES = {
    "policy.vision_width": 32, "policy.vision_layers": 1, "policy.vision_heads": 2,
    "policy.lang_width": 32, "policy.lang_layers": 1, "policy.lang_heads": 2, "policy.pool_heads": 2,
    "policy.head_hidden": 32, "train.progress": False,
}


# The same for VLA-Adapter (scratch backbone 32x2, ViT 32x1, 4 ActionQuery tokens).
VLA_TINY_OVERRIDES = {
    "policy.width": 32, "policy.layers": 2, "policy.heads": 2, "policy.vision_width": 32,
    "policy.vision_layers": 1, "policy.vision_heads": 2, "policy.num_queries": 4, "policy.policy_heads": 2,
    "train.progress": False,
}
TINY_BY_POLICY = {"tinyvla": TINY_OVERRIDES, "vla_adapter": VLA_TINY_OVERRIDES}


@pytest.fixture(scope="session")
def toy_splits():
    from tinyvla.data.toy import generate_toy_dataset

    return generate_toy_dataset(256, 0, name="train"), generate_toy_dataset(64, 1, name="val")


@pytest.fixture
def tiny_run_config():
    from tinyvla.pipeline import build_run_config

    def make(policy_type="tinyvla", preset="tiny", **extra):
        return build_run_config(policy_type, preset, {**TINY_BY_POLICY[policy_type], **extra})

    return make
