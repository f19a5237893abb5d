"""The toy "reach the named block" task: a scene sampler, a renderer, a gymnasium env and its expert.

A 64x64 image shows two blocks of different colours and the robot's end-effector (a white cross).
The instruction names one block by colour, through one of many templates and synonyms. The action
is the position (x, y) in [-1, 1]^2 that the end-effector should go to: the named block's centre.

Why both modalities are needed (positions uniform over the workspace, two blocks):
  * language alone knows the colour but not where it is: the best constant guess is the workspace
    centre, error E|p| ~ 0.77 for p uniform in [-1, 1]^2 (0.70 here, as centres stay inside a margin);
  * vision alone sees both blocks but not which one is meant: the best guess is their midpoint,
    error E|p1 - p2| / 2 ~ 0.52 (0.47 here, as blocks never overlap and stay inside the margin);
  * with both, the error can go to 0 (pixel quantisation only: 1 px = 0.031).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (230, 210, 40),
}
SYNONYMS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald", "lime"],
    "blue": ["blue", "azure", "navy"],
    "yellow": ["yellow", "golden", "lemon"],
}
NOUNS = ["block", "cube", "box", "square", "brick"]
TEMPLATES = [
    "go to the {color} {noun}",
    "move to the {color} {noun}",
    "reach the {color} {noun}",
    "touch the {color} {noun}",
    "point at the {color} {noun}",
    "please move the arm to the {color} {noun}",
    "the {color} {noun} is your target",
    "find the {color} {noun} and go there",
    "head for the {color} {noun}",
    "put the gripper on the {color} {noun}",
]
BACKGROUND = (30, 30, 34)
EE_COLOR = (255, 255, 255)


@dataclass
class ToyTaskConfig:
    image_size: int = 64
    block_size: int = 6
    num_blocks: int = 2
    max_step: float = 0.35  # end-effector speed limit per env step, in workspace units
    max_episode_steps: int = 12

    def validate(self) -> None:
        if not 2 <= self.num_blocks <= len(COLORS):
            raise ValueError(f"num_blocks must be in [2, {len(COLORS)}], got {self.num_blocks}")
        if self.block_size * 3 > self.image_size:
            raise ValueError("block_size is too large for the image")


def all_instructions() -> list[str]:
    """Every instruction the task can produce: the tokenizer's training corpus."""
    return [
        t.format(color=c, noun=n) for t in TEMPLATES for syns in SYNONYMS.values() for c in syns for n in NOUNS
    ]


@dataclass
class Scene:
    corners: np.ndarray  # (k, 2) int top-left pixel (x, y) of each block
    colors: list[str]  # (k,) colour names
    target: int  # index of the named block
    instruction: str
    ee: np.ndarray  # (2,) float end-effector position in [-1, 1]^2


def pixel_to_workspace(px: np.ndarray, image_size: int) -> np.ndarray:
    return (np.asarray(px, dtype=np.float32) / image_size) * 2.0 - 1.0


def block_centres(scene: Scene, cfg: ToyTaskConfig) -> np.ndarray:
    return pixel_to_workspace(scene.corners + cfg.block_size / 2.0, cfg.image_size)  # (k, 2)


def sample_scene(rng: np.random.Generator, cfg: ToyTaskConfig) -> Scene:
    s, size = cfg.block_size, cfg.image_size
    corners: list[np.ndarray] = []
    while len(corners) < cfg.num_blocks:  # rejection-sample non-overlapping blocks (1 px gap)
        c = rng.integers(0, size - s + 1, size=2)
        if all(np.abs(c - o).max() > s for o in corners):
            corners.append(c)
    colors = list(rng.choice(list(COLORS), size=cfg.num_blocks, replace=False))
    target = int(rng.integers(cfg.num_blocks))
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    word = SYNONYMS[colors[target]][rng.integers(3)]
    noun = NOUNS[rng.integers(len(NOUNS))]
    return Scene(
        corners=np.stack(corners),
        colors=colors,
        target=target,
        instruction=template.format(color=word, noun=noun),
        ee=rng.uniform(-1.0, 1.0, size=2).astype(np.float32),
    )


def render(scene: Scene, cfg: ToyTaskConfig, out: np.ndarray | None = None) -> np.ndarray:
    """-> uint8 (3, H, W). Blocks first, then the end-effector cross on top."""
    size, s = cfg.image_size, cfg.block_size
    img = out if out is not None else np.empty((3, size, size), dtype=np.uint8)
    img[:] = np.array(BACKGROUND, dtype=np.uint8)[:, None, None]
    for (x, y), color in zip(scene.corners, scene.colors):
        img[:, y : y + s, x : x + s] = np.array(COLORS[color], dtype=np.uint8)[:, None, None]
    ex, ey = np.clip(((scene.ee + 1.0) / 2.0 * size).astype(int), 1, size - 2)
    img[:, ey, ex - 1 : ex + 2] = np.array(EE_COLOR, dtype=np.uint8)[:, None]
    img[:, ey - 1 : ey + 2, ex] = np.array(EE_COLOR, dtype=np.uint8)[:, None]
    return img


def expert_action(scene: Scene, cfg: ToyTaskConfig) -> np.ndarray:
    """The scripted expert: command the named block's centre."""
    return block_centres(scene, cfg)[scene.target].astype(np.float32)


class ToyReachEnv(gym.Env):
    """Observation: {"image": uint8 (3, H, W), "instruction": str, "state": float32 (2,) end-effector}.
    Action: commanded end-effector position in [-1, 1]^2; the arm moves towards it at most
    `max_step` per step. Success: the end-effector inside the named block."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, cfg: ToyTaskConfig | None = None, render_mode: str | None = "rgb_array"):
        self.cfg = cfg or ToyTaskConfig()
        self.cfg.validate()
        size = self.cfg.image_size
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (3, size, size), dtype=np.uint8),
                "instruction": gym.spaces.Text(max_length=256, charset=string.ascii_letters + string.digits + " ,.'-?!"),
                "state": gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.scene: Scene | None = None
        self._steps = 0

    def _obs(self) -> dict:
        assert self.scene is not None
        return {"image": render(self.scene, self.cfg), "instruction": self.scene.instruction, "state": self.scene.ee.copy()}

    def _distance(self) -> float:
        assert self.scene is not None
        return float(np.linalg.norm(self.scene.ee - block_centres(self.scene, self.cfg)[self.scene.target]))

    def _inside_target(self) -> bool:
        assert self.scene is not None
        half = self.cfg.block_size / self.cfg.image_size  # half a block, in workspace units
        return bool(np.abs(self.scene.ee - block_centres(self.scene, self.cfg)[self.scene.target]).max() <= half)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.scene = sample_scene(self.np_random, self.cfg)
        self._steps = 0
        return self._obs(), {"is_success": self._inside_target()}

    def step(self, action):
        assert self.scene is not None, "call reset() first"
        a = np.clip(np.asarray(action, dtype=np.float32).reshape(2), -1.0, 1.0)
        delta = a - self.scene.ee
        norm = float(np.linalg.norm(delta))
        if norm > self.cfg.max_step:
            delta *= self.cfg.max_step / norm
        self.scene.ee = (self.scene.ee + delta).astype(np.float32)
        self._steps += 1
        success = self._inside_target()
        truncated = self._steps >= self.cfg.max_episode_steps and not success
        return self._obs(), -self._distance(), success, truncated, {"is_success": success}

    def expert_action(self) -> np.ndarray:
        assert self.scene is not None
        return expert_action(self.scene, self.cfg)

    def render(self):
        return None if self.scene is None else render(self.scene, self.cfg).transpose(1, 2, 0)
