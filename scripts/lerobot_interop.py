"""Helper of scripts/check_lerobot_interop.sh: runs in two environments.

In tinyvla's venv (imports tinyvla, never lerobot):
    dump ROOT OUT.npz                      what our reader (load_lerobot) returns, for the other side to compare
    same A.npz B.npz [--episodes 0,2] [--lossy]   two dumps hold the same frames (B: those episodes of it)
In lerobot's venv (imports lerobot, never tinyvla):
    read ROOT OURS.npz                     LeRobotDataset loads ROOT offline; items, delta_timestamps, DataLoader,
                                           episode subsets and stats, compared with our reader's dump
    tools IMAGES VIDEO OUT                 lerobot's delete / split / merge / image-to-video tools on our datasets
    write OUT --mode image|av1|h264        a dataset written by lerobot's create / add_frame / save_episode

Each check prints "PASS <what>" or raises; the shell script stops at the first failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CAMERA_FRONT = "observation.images.front"


def _pass(what: str) -> None:
    print(f"PASS {what}", flush=True)


# ---- tinyvla side ---------------------------------------------------------------------------------
def dump(root: str, out: str) -> None:
    from tinyvla.data.lerobot import load_lerobot

    f = load_lerobot(root)
    frame_index = np.concatenate([np.arange(n) for n in np.unique(f.episode_index.numpy(), return_counts=True)[1]])
    np.savez(out, images=f.images.numpy(), states=f.states.numpy(), actions=f.actions.numpy(),
             episode_index=f.episode_index.numpy(), frame_index=frame_index, task_index=f.task_index.numpy(),
             tasks=np.array(json.dumps(f.tasks)), fps=np.array(float(f.info["fps"])))
    print(f"tinyvla read {root}: {len(f.actions)} frames, {len(np.unique(f.episode_index))} episodes, "
          f"images {tuple(f.images.shape[1:])}")


def same(a_path: str, b_path: str, episodes: str = "", lossy: bool = False) -> None:
    """A (e.g. a tool's output, re-indexed from 0) holds B's frames of `episodes`, in order."""
    a, b = np.load(a_path), np.load(b_path)
    order = [int(e) for e in episodes.split(",")] if episodes else list(np.unique(b["episode_index"]))
    keep = np.concatenate([np.nonzero(b["episode_index"] == e)[0] for e in order])  # episodes in that order
    tasks_a, tasks_b = json.loads(str(a["tasks"])), json.loads(str(b["tasks"]))
    assert len(a["actions"]) == len(keep), (len(a["actions"]), len(keep))
    for key in ("states", "actions", "frame_index"):
        assert np.array_equal(a[key], b[key][keep]), key
    assert [tasks_a[i] for i in a["task_index"]] == [tasks_b[i] for i in b["task_index"][keep]]
    diff = np.abs(a["images"].astype(int) - b["images"][keep].astype(int))
    if lossy:  # re-encoded video: the same frames, not the same pixels
        assert diff.mean() < 6, diff.mean()
    else:
        assert diff.max() == 0, diff.max()
    _pass(f"{Path(a_path).stem} == {Path(b_path).stem}{f' episodes {episodes}' if episodes else ''} "
          f"({len(keep)} frames, images {'mean |diff| %.2f' % diff.mean() if lossy else 'bit-identical'})")


# ---- lerobot side ---------------------------------------------------------------------------------
def _camera(ds) -> str:
    keys = ds.meta.camera_keys
    assert len(keys) == 1, keys
    return keys[0]


def _uint8(x) -> np.ndarray:  # lerobot's float images in [0, 1] -> uint8 (exact for 8-bit sources)
    return (x.numpy() * 255).round().astype(np.uint8)


def read(root: str, ours_path: str, camera_stats: bool = True) -> None:
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ours = np.load(ours_path)
    tasks = json.loads(str(ours["tasks"]))
    ds = LeRobotDataset("local/x", root=root)
    cam = _camera(ds)
    n = len(ours["actions"])
    assert ds.num_frames == n and len(ds) == n, (ds.num_frames, n)
    assert ds.num_episodes == len(np.unique(ours["episode_index"]))
    # First, before this process decodes any video: lerobot caches torchcodec decoders (open files) in a module
    # global that forked workers inherit, and with torchcodec 0.14 these can then fail ("Could not push packet
    # to decoder"; seen on our AV1 file and on one lerobot's image-to-video tool wrote). lerobot-train also
    # builds its DataLoader before decoding anything.
    fps = ds.fps
    delta = {"action": [k / fps for k in range(5)], "observation.state": [-1 / fps, 0.0], cam: [-1 / fps, 0.0]}
    dsd = LeRobotDataset("local/x", root=root, delta_timestamps=delta)
    loader = torch.utils.data.DataLoader(dsd, batch_size=16, shuffle=True, num_workers=2)
    seen = 0
    for batch in loader:
        assert batch[cam].shape[1:3] == (2, 3) and batch["action"].shape[1] == 5
        seen += len(batch["index"])
    assert seen == n
    _pass(f"DataLoader (2 workers, batch 16, delta_timestamps) went through all {n} items")

    where = {(int(e), int(f)): i for i, (e, f) in enumerate(zip(ours["episode_index"], ours["frame_index"]))}
    worst = 0
    for i in range(len(ds)):
        item = ds[i]
        j = where[(int(item["episode_index"]), int(item["frame_index"]))]
        assert np.array_equal(item["action"].numpy(), ours["actions"][j]), i
        assert np.array_equal(item["observation.state"].numpy(), ours["states"][j]), i
        assert item["task"] == tasks[ours["task_index"][j]], (item["task"], i)
        worst = max(worst, int(np.abs(_uint8(item[cam]).astype(int) - ours["images"][j]).max()))
    assert worst == 0, f"images differ by up to {worst}/255"
    _pass(f"LeRobotDataset reads {root}: {n} items, {ds.num_episodes} episodes, camera {cam} "
          f"({ds.meta.features[cam]['dtype']}), bit-identical to tinyvla's reader")

    stats = ds.meta.stats
    for key in ("action", "observation.state", *([cam] if camera_stats else [])):
        missing = {"q01", "q10", "q50", "q90", "q99"} - set(stats[key])
        assert not missing, (key, missing)
    _pass(f"stats have q01/q10/q50/q90/q99 for {'camera, ' if camera_stats else ''}state and action")

    for i in (0, len(dsd) // 2, len(dsd) - 1):
        item = dsd[i]
        e, f = int(item["episode_index"]), int(item["frame_index"])
        rows = np.nonzero(ours["episode_index"] == e)[0]  # the episode's frames, in time order
        clamp = lambda k: rows[min(max(f + k, 0), len(rows) - 1)]  # noqa: E731 - lerobot repeats the edge frame
        assert item["action"].shape == (5, ours["actions"].shape[1])
        assert np.array_equal(item["action"].numpy(), ours["actions"][[clamp(k) for k in range(5)]])
        assert np.array_equal(item["observation.state"].numpy(), ours["states"][[clamp(-1), clamp(0)]])
        assert np.array_equal(_uint8(item[cam]), ours["images"][[clamp(-1), clamp(0)]])
        assert item["action_is_pad"].tolist() == [f + k >= len(rows) for k in range(5)]
    _pass("delta_timestamps (action chunk of 5, previous state and frame) match, padding flags right")

    episodes = sorted(np.unique(ours["episode_index"]))[1::2]
    sub = LeRobotDataset("local/x", root=root, episodes=[int(e) for e in episodes])
    keep = np.nonzero(np.isin(ours["episode_index"], episodes))[0]
    assert len(sub) == len(keep), (len(sub), len(keep))
    got = np.stack([sub[i]["action"].numpy() for i in range(len(sub))])
    assert np.array_equal(got, ours["actions"][keep])
    assert np.array_equal(_uint8(sub[len(sub) - 1][cam]), ours["images"][keep[-1]])
    _pass(f"episode subset {list(map(int, episodes))}: {len(sub)} frames match")


def tools(images_root: str, video_root: str, out: str) -> None:
    from lerobot.datasets.dataset_tools import (convert_image_to_video_dataset, delete_episodes, merge_datasets,
                                                split_dataset)
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out_dir = Path(out)
    for name, root in (("images", images_root), ("video", video_root)):
        ds = LeRobotDataset(f"local/{name}", root=root)
        e = ds.num_episodes
        deleted = delete_episodes(ds, episode_indices=[1], output_dir=out_dir / f"{name}_deleted",
                                  repo_id=f"local/{name}_deleted")
        assert deleted.num_episodes == e - 1
        parts = split_dataset(ds, {"even": list(range(0, e, 2)), "odd": list(range(1, e, 2))},
                              output_dir=out_dir / f"{name}_split")
        merged = merge_datasets([parts["even"], parts["odd"]], output_repo_id=f"local/{name}_merged",
                                output_dir=out_dir / f"{name}_merged")
        assert merged.num_episodes == e and merged.num_frames == ds.num_frames
        _pass(f"{name}: delete_episodes, split (even/odd) and merge ran ({e} episodes)")
    ds = LeRobotDataset("local/images", root=images_root)
    converted = convert_image_to_video_dataset(ds, output_dir=out_dir / "images_to_video", repo_id="local/converted",
                                               num_workers=1)
    assert converted.meta.video_keys == ds.meta.camera_keys
    _pass("convert_image_to_video ran")


def write(out: str, mode: str, episodes: int = 4, size: int = 48) -> None:
    """Smooth moving gradients (they survive lossy video), random state/action, two tasks."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dtype = "image" if mode == "image" else "video"
    features = {
        CAMERA_FRONT: {"dtype": dtype, "shape": (size, size, 3), "names": ["height", "width", "channels"]},
        "observation.state": {"dtype": "float32", "shape": (6,), "names": [f"joint_{i}" for i in range(6)]},
        "action": {"dtype": "float32", "shape": (6,), "names": [f"joint_{i}" for i in range(6)]},
    }
    vcodec = {"image": "libsvtav1", "av1": "libsvtav1", "h264": "h264"}[mode]
    ds = LeRobotDataset.create("local/written", fps=30, features=features, root=out, robot_type="so100",
                               use_videos=dtype == "video", vcodec=vcodec)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 255 // size, yy * 255 // size, (xx + yy) * 127 // size], -1).astype(np.uint8)
    for e in range(episodes):
        for t in range(20 + 5 * e):
            ds.add_frame({CAMERA_FRONT: np.roll(base, 2 * t + 5 * e, axis=1),
                          "observation.state": rng.normal(size=6).astype(np.float32),
                          "action": rng.uniform(-1, 1, 6).astype(np.float32),
                          "task": ["pick up the cube", "push the cube left"][e % 2]})
        ds.save_episode()
    ds.finalize()
    info = json.loads((Path(out) / "meta" / "info.json").read_text())
    _pass(f"lerobot wrote {out} ({mode}: {info['total_episodes']} episodes, {info['total_frames']} frames"
          f"{', codec ' + info['features'][CAMERA_FRONT]['info']['video.codec'] if dtype == 'video' else ''})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("dump"); s.add_argument("root"); s.add_argument("out")  # noqa: E702
    s = sub.add_parser("same"); s.add_argument("a"); s.add_argument("b")  # noqa: E702
    s.add_argument("--episodes", default=""); s.add_argument("--lossy", action="store_true")  # noqa: E702
    s = sub.add_parser("read"); s.add_argument("root"); s.add_argument("ours")  # noqa: E702
    s.add_argument("--no-camera-stats", action="store_true", help="lerobot's image-to-video tool drops them")
    s = sub.add_parser("tools"); s.add_argument("images"); s.add_argument("video"); s.add_argument("out")  # noqa: E702
    s = sub.add_parser("write"); s.add_argument("out")  # noqa: E702
    s.add_argument("--mode", choices=["image", "av1", "h264"], required=True)
    a = p.parse_args(argv)
    if a.command == "dump":
        dump(a.root, a.out)
    elif a.command == "same":
        same(a.a, a.b, a.episodes, a.lossy)
    elif a.command == "read":
        read(a.root, a.ours, not a.no_camera_stats)
    elif a.command == "tools":
        tools(a.images, a.video, a.out)
    else:
        write(a.out, a.mode)


if __name__ == "__main__":
    sys.exit(main())
