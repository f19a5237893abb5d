"""Draw docs/overview.png, the README's picture: what a policy sees (toy task and Meta-World frames at the
sizes we train on), the instruction it reads, and the action chunk it returns (the scripted expert's here).

    .venv/bin/python scripts/make_overview.py [--out docs/overview.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyvla.envs.metaworld import MetaWorldEnv  # noqa: E402
from tinyvla.envs.toy_reach import ToyReachEnv  # noqa: E402


def frames() -> list[tuple[np.ndarray, str, str]]:
    out = []
    env = ToyReachEnv()
    obs, _ = env.reset(seed=3)
    out.append((obs["image"], f'"{obs["instruction"]}"', "toy task, 64 px"))
    for task, seed in (("drawer-open-v3", 1), ("pick-place-v3", 2), ("button-press-topdown-v3", 0)):
        env = MetaWorldEnv(task, image_size=96, camera_pos="close")
        obs, _ = env.reset(seed=seed)
        for _ in range(25):  # a few expert steps: the arm in the scene
            obs, *_ = env.step(env.expert_action(), render=True)
        out.append((obs["image"], f'"{env.instruction}"', f"Meta-World {task[:-3]}, 96 px"))
        env.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="docs/overview.png")
    args = p.parse_args()
    panels = frames()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.6))
    for ax, (img, instruction, caption) in zip(axes, panels):
        ax.imshow(np.transpose(img, (1, 2, 0)), interpolation="nearest")
        ax.set_title(instruction, fontsize=10)
        ax.set_xlabel(caption, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("camera image + instruction  ->  tinyvla policy  ->  robot actions", fontsize=12)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
