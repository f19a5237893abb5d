"""Datasets in the LeRobot format (codebase v3.0; v2.x read too), written and read without LeRobot.

Layout written (what `LeRobotDataset(repo_id, root=DIR)` loads):
    meta/info.json            fps, features {key: {dtype, shape, names}}, totals, path templates
    meta/stats.json           per feature (camera, state, action, timestamp, index columns): min, max,
                              mean, std, count, q01, q10, q50, q90, q99 (camera: per channel in [0, 1])
    meta/tasks.parquet        index "task" (the instruction) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks, frame range, file, stats
    data/chunk-000/file-NNN.parquet            frames: observation.image (PNG bytes, HF `Image`),
                                               observation.state, action, timestamp, frame_index,
                                               episode_index, index, task_index
    videos/observation.image/chunk-000/file-NNN.mp4  (with `video=True`: the camera as AV1 video,
                                               episodes concatenated, located by from/to_timestamp)
An episode is never split across files; a new file starts past `max_file_mb`.

Why not the `lerobot` package itself: it pins torchvision and a torch range that do not install beside
this machine's CPU torch, and it is a heavy dependency for a file format. pyarrow writes the frames
(streamed, one episode at a time) and pandas the small metadata tables, as LeRobot's own writer does.
Interop with lerobot itself is checked outside CI by scripts/check_lerobot_interop.sh (docs/datasets.md).
Writes go to a hidden temporary directory renamed into place at the end, so an interrupted run never
leaves a directory that looks like a complete dataset.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tinyvla.errors import DataError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
IMAGE_KEY = "observation.image"
STATE_KEY = "observation.state"
ACTION_KEY = "action"


def _require_arrow():
    try:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DataError(f"LeRobot-format datasets need pyarrow and pandas ({e}): pip install 'tinyvla[metaworld]'") from None
    return pa, pq, pd


def _require_av():
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration at the default level
    try:
        import av
    except ImportError:
        raise DataError("video features need PyAV: pip install av") from None
    return av


def _png(image_hwc: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image_hwc).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # the ones LeRobot stores
INDEX_COLUMNS = ("frame_index", "episode_index", "index", "task_index")


def _column_stats(x: np.ndarray) -> dict:
    """(rows, dims) -> per-dimension min, max, mean, std, count and the QUANTILES (numpy's linear rule)."""
    x = x.astype(np.float64)
    q = np.quantile(x, list(QUANTILES.values()), axis=0)
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(), "std": x.std(0).tolist(),
            "count": [int(len(x))], **{k: q[i].tolist() for i, k in enumerate(QUANTILES)}}


class _Columns:
    """The rows of a numeric feature, kept for exact statistics (a few floats a frame)."""

    def __init__(self):
        self.parts: list[np.ndarray] = []

    def add(self, x: np.ndarray) -> None:  # (rows, dims)
        self.parts.append(np.asarray(x, dtype=np.float64).reshape(len(x), -1))

    def result(self) -> dict:
        return _column_stats(np.concatenate(self.parts))


class _Pixels:
    """Per-channel histograms of uint8 pixels: exact min/max/mean/std/quantiles without keeping the frames.
    Results are shaped (3, 1, 1) and scaled to [0, 1], as LeRobot stores image statistics; `count` counts frames."""

    def __init__(self):
        self.hist = np.zeros((3, 256), dtype=np.int64)
        self.frames = 0

    def add(self, images: np.ndarray) -> None:  # (T, H, W, 3) uint8
        pixels = images.reshape(-1, 3)
        for c in range(3):
            self.hist[c] += np.bincount(pixels[:, c], minlength=256)
        self.frames += len(images)

    def result(self) -> dict:
        values = np.arange(256, dtype=np.float64)
        n = self.hist.sum(1)  # (3,) pixels per channel
        mean = (self.hist * values).sum(1) / n
        std = np.sqrt(np.maximum((self.hist * values**2).sum(1) / n - mean**2, 0.0))
        seen = self.hist > 0
        cum = self.hist.cumsum(1)

        def value_at(c: int, k: int) -> float:  # the k-th smallest pixel of channel c
            return float(np.searchsorted(cum[c], k, side="right"))

        def quantile(q: float) -> np.ndarray:  # numpy's linear interpolation between order statistics
            out = np.empty(3)
            for c in range(3):
                pos = q * (n[c] - 1)
                lo = int(np.floor(pos))
                a, b = value_at(c, lo), value_at(c, min(lo + 1, int(n[c]) - 1))
                out[c] = a + (pos - lo) * (b - a)
            return out

        per_channel = {"min": seen.argmax(1).astype(np.float64), "max": 255.0 - seen[:, ::-1].argmax(1),
                       "mean": mean, "std": std, **{k: quantile(q) for k, q in QUANTILES.items()}}
        return {**{k: (v[:, None, None] / 255.0).tolist() for k, v in per_channel.items()}, "count": [int(self.frames)]}


@dataclass
class LeRobotWriter:
    """Stream episodes into a new LeRobot v3.0 dataset at `root` (which must not exist yet).

    with LeRobotWriter(root, fps=80, image_shape=(64, 64, 3), state_names=[...], action_names=[...]) as w:
        w.add_episode(images_hwc_uint8, states, actions, task="open the drawer")
    """

    root: Path
    fps: int
    image_shape: tuple[int, int, int]
    state_names: list[str]
    action_names: list[str]
    robot_type: str | None = None
    max_file_mb: float = 100.0
    extra_meta: dict = field(default_factory=dict)  # written to meta/tinyvla.json (how the data was made)
    video: bool = False  # the camera as video (LeRobot's default: AV1, yuv420p, GOP 2) instead of PNG frames
    video_codec: str = "libsvtav1"
    # Several cameras (PNG frames only), e.g. LIBERO's observation.images.image / .wrist_image: then
    # add_episode takes {key: images}.
    image_keys: tuple[str, ...] = (IMAGE_KEY,)

    def __post_init__(self):
        self.root = Path(self.root)
        if self.root.exists():
            raise DataError(f"{str(self.root)!r} already exists; choose a new --out directory")
        self._pa, self._pq, self._pd = _require_arrow()
        self.tmp = self.root.parent / f".{self.root.name}.partial-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        (self.tmp / "meta").mkdir(parents=True)
        pa = self._pa
        s, a = len(self.state_names), len(self.action_names)
        if self.video and tuple(self.image_keys) != (IMAGE_KEY,):
            raise DataError(f"video storage supports one camera ({IMAGE_KEY}); store several as PNG frames")
        image_column = [] if self.video else [(k, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
                                              for k in self.image_keys]
        self.schema = pa.schema([
            *image_column,
            (STATE_KEY, pa.list_(pa.float32(), s)), (ACTION_KEY, pa.list_(pa.float32(), a)),
            ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
            ("index", pa.int64()), ("task_index", pa.int64()),
        ], metadata={"huggingface": json.dumps({"info": {"features": self._hf_features()}})})
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict] = []
        self.frames = 0
        self._file_index, self._file_bytes, self._writer = -1, 0, None
        self._pixels = {k: _Pixels() for k in self.image_keys}
        self._columns = {k: _Columns() for k in (STATE_KEY, ACTION_KEY, "timestamp", *INDEX_COLUMNS)}
        self._video = None  # (container, stream, file index, frames in file)
        self._video_file = -1
        if self.video:
            av = _require_av()
            try:
                av.codec.Codec(self.video_codec, "w")
            except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError and others
                raise DataError(f"this PyAV build has no {self.video_codec!r} encoder") from None

    def _hf_features(self) -> dict:
        def seq(n: int) -> dict:
            return {"feature": {"dtype": "float32", "_type": "Value"}, "length": n, "_type": "List"}

        image = {} if self.video else {k: {"_type": "Image"} for k in self.image_keys}
        return {**image, STATE_KEY: seq(len(self.state_names)),
                ACTION_KEY: seq(len(self.action_names)), "timestamp": {"dtype": "float32", "_type": "Value"},
                **{k: {"dtype": "int64", "_type": "Value"} for k in
                   ("frame_index", "episode_index", "index", "task_index")}}

    def _open_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._file_index += 1
        path = self.tmp / DATA_PATH.format(chunk_index=self._file_index // CHUNKS_SIZE,
                                           file_index=self._file_index % CHUNKS_SIZE)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer, self._file_bytes = self._pq.ParquetWriter(str(path), self.schema), 0

    def _video_frames(self, images: np.ndarray) -> dict:
        """Append an episode to the current video file (a new one past the size limit)."""
        av = _require_av()
        current = self.tmp / self._video_path(self._video_file)
        if self._video is None or (current.is_file() and current.stat().st_size > 200 * 2**20):
            self._close_video()
            self._video_file += 1
            path = self.tmp / self._video_path(self._video_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(path), "w")
            stream = container.add_stream(self.video_codec, rate=self.fps)
            stream.width, stream.height = self.image_shape[1], self.image_shape[0]
            stream.pix_fmt = "yuv420p"
            stream.options = {"g": "2", "crf": "30"} if "av1" in self.video_codec else {"g": "2"}
            self._video = [container, stream, 0]
        container, stream, count = self._video
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = count + i
            for packet in stream.encode(frame):
                container.mux(packet)
        self._video[2] = count + len(images)
        return {f"videos/{IMAGE_KEY}/chunk_index": self._video_file // CHUNKS_SIZE,
                f"videos/{IMAGE_KEY}/file_index": self._video_file % CHUNKS_SIZE,
                f"videos/{IMAGE_KEY}/from_timestamp": count / self.fps,
                f"videos/{IMAGE_KEY}/to_timestamp": (count + len(images)) / self.fps}

    def _video_path(self, index: int) -> str:
        return VIDEO_PATH.format(video_key=IMAGE_KEY, chunk_index=index // CHUNKS_SIZE, file_index=index % CHUNKS_SIZE)

    def _close_video(self) -> None:
        if self._video is not None:
            container, stream, _ = self._video
            for packet in stream.encode():
                container.mux(packet)
            container.close()
            self._video = None

    def add_episode(self, images: np.ndarray, states: np.ndarray, actions: np.ndarray, task: str,
                    **extra) -> None:
        """images (T, H, W, 3) uint8 (or {image key: images} for several cameras), states (T, s), actions (T, a);
        `extra` -> columns of the episode table."""
        cameras = images if isinstance(images, dict) else {self.image_keys[0]: images}
        if sorted(cameras) != sorted(self.image_keys):
            raise DataError(f"episode cameras {', '.join(cameras)} are not the dataset's {', '.join(self.image_keys)}")
        t = len(cameras[self.image_keys[0]])
        for images in cameras.values():
            if t == 0 or images.shape != (t, *self.image_shape) or images.dtype != np.uint8:
                raise DataError(f"episode images must be uint8 (T, {', '.join(map(str, self.image_shape))}), "
                                f"got {images.dtype} {images.shape}")
        if states.shape != (t, len(self.state_names)) or actions.shape != (t, len(self.action_names)):
            raise DataError(f"episode of {t} frames: states {states.shape}, actions {actions.shape} do not match")
        if self._writer is None or self._file_bytes > self.max_file_mb * 2**20:
            self._open_file()
        pa = self._pa
        task_index = self.tasks.setdefault(task, len(self.tasks))
        episode_index = len(self.episodes)
        video_columns = self._video_frames(cameras[IMAGE_KEY]) if self.video else {}
        pngs = {} if self.video else {k: [_png(im) for im in cameras[k]] for k in self.image_keys}
        image_column = {k: pa.array([{"bytes": b, "path": None} for b in v], self.schema.field(k).type)
                        for k, v in pngs.items()}
        table = pa.table({
            **image_column,
            STATE_KEY: pa.array(list(states.astype(np.float32)), self.schema.field(STATE_KEY).type),
            ACTION_KEY: pa.array(list(actions.astype(np.float32)), self.schema.field(ACTION_KEY).type),
            "timestamp": pa.array(np.arange(t, dtype=np.float32) / self.fps),
            "frame_index": pa.array(np.arange(t, dtype=np.int64)),
            "episode_index": pa.array(np.full(t, episode_index, dtype=np.int64)),
            "index": pa.array(np.arange(self.frames, self.frames + t, dtype=np.int64)),
            "task_index": pa.array(np.full(t, task_index, dtype=np.int64)),
        }, schema=self.schema)
        self._writer.write_table(table)
        self._file_bytes += sum(len(b) for v in pngs.values() for b in v) + table.nbytes // 4
        episode_stats = {}
        for key, images in cameras.items():
            pixels = _Pixels()
            pixels.add(images)
            self._pixels[key].add(images)
            episode_stats[key] = pixels.result()
        for key, columns in self._columns.items():  # the values as stored (float32 state, action, timestamp)
            rows = table.column(key).to_numpy() if key in ("timestamp", *INDEX_COLUMNS) else \
                np.asarray(table.column(key).to_pylist(), dtype=np.float32)
            columns.add(rows)
            episode_stats[key] = _column_stats(rows.reshape(t, -1))
        row = {"episode_index": episode_index, "tasks": [task], "length": t,
               "data/chunk_index": self._file_index // CHUNKS_SIZE, "data/file_index": self._file_index % CHUNKS_SIZE,
               "dataset_from_index": self.frames, "dataset_to_index": self.frames + t,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0, **video_columns, **extra}
        for key, stats in episode_stats.items():
            row.update({f"stats/{key}/{k}": np.asarray(v, dtype=np.float64 if k != "count" else np.int64).tolist()
                        for k, v in stats.items()})
        self.episodes.append(row)
        self.frames += t

    def close(self) -> Path:
        """Write the metadata and move the dataset into place; -> its directory."""
        if self._writer is not None:
            self._writer.close()
        self._close_video()
        if not self.episodes:
            self.abort()
            raise DataError("no episode was recorded, nothing to write")
        pd = self._pd
        episodes_path = self.tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.episodes).to_parquet(episodes_path, index=False)
        pd.DataFrame({"task_index": list(self.tasks.values())},
                     index=pd.Index(list(self.tasks), name="task")).to_parquet(self.tmp / "meta" / "tasks.parquet")
        stats = {**{k: p.result() for k, p in self._pixels.items()}, **{k: c.result() for k, c in self._columns.items()}}
        (self.tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
        h, w, c = self.image_shape
        scalar = {"shape": [1], "names": None}
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
            "total_episodes": len(self.episodes), "total_frames": self.frames, "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": int(self.max_file_mb), "video_files_size_in_mb": 200,
            "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH if self.video else None,
            "features": {
                **{key: ({"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
                             "info": {"video.height": h, "video.width": w, "video.codec": self.video_codec.replace(
                                 "libsvt", "").replace("lib", ""), "video.pix_fmt": "yuv420p", "video.is_depth_map":
                                 False, "video.fps": self.fps, "video.channels": c, "has_audio": False}}
                            if self.video else
                            {"dtype": "image", "shape": [h, w, c], "names": ["height", "width", "channels"]})
                   for key in self.image_keys},
                STATE_KEY: {"dtype": "float32", "shape": [len(self.state_names)], "names": self.state_names},
                ACTION_KEY: {"dtype": "float32", "shape": [len(self.action_names)], "names": self.action_names},
                "timestamp": {"dtype": "float32", **scalar},
                **{k: {"dtype": "int64", **scalar} for k in ("frame_index", "episode_index", "index", "task_index")},
            },
        }
        (self.tmp / "meta" / "tinyvla.json").write_text(json.dumps(self.extra_meta, indent=2))
        (self.tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))  # last: marks completeness
        os.replace(self.tmp, self.root)
        return self.root

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        try:
            self._close_video()
        except Exception:  # noqa: BLE001 - the partial copy is deleted anyway
            self._video = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "LeRobotWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


# ---- reading ------------------------------------------------------------------------------------
@dataclass
class LeRobotFrames:
    """All frames of a LeRobot dataset in memory: images (N, 3, H, W) uint8, states (N, s), actions (N, a)."""

    images: torch.Tensor
    states: torch.Tensor
    actions: torch.Tensor
    episode_index: torch.Tensor  # (N,)
    task_index: torch.Tensor  # (N,)
    tasks: list[str]
    info: dict


def is_lerobot_dataset(path: str | Path) -> bool:
    return (Path(path) / "meta" / "info.json").is_file()


def _read_tasks(root: Path, pd) -> list[str]:
    if (root / "meta" / "tasks.parquet").is_file():  # v3.0: the task string is the index
        df = pd.read_parquet(root / "meta" / "tasks.parquet")
        names = df.index if "task" not in df.columns else df["task"]
        order = np.argsort(df["task_index"].to_numpy())
        return [str(names[i]) for i in order]
    if (root / "meta" / "tasks.jsonl").is_file():  # v2.x
        rows = [json.loads(line) for line in (root / "meta" / "tasks.jsonl").read_text().splitlines() if line.strip()]
        return [r["task"] for r in sorted(rows, key=lambda r: r["task_index"])]
    raise DataError(f"{str(root)!r}: no meta/tasks.parquet (v3) or meta/tasks.jsonl (v2)")


def _resize(image_hwc: np.ndarray, size: int) -> np.ndarray:
    if not size or image_hwc.shape[:2] == (size, size):
        return image_hwc
    from PIL import Image

    return np.asarray(Image.fromarray(image_hwc).resize((size, size), Image.BILINEAR, reducing_gap=2.0))


def _decode_images(column, key: str, hw, size: int) -> np.ndarray:
    from PIL import Image

    h, w = size or hw[0], size or hw[1]
    out = np.empty((len(column), 3, h, w), dtype=np.uint8)
    for i, cell in enumerate(column):
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if data is None:
            raise DataError(f"frame {i} of {key!r} holds no embedded image bytes (only a path): not supported")
        out[i] = _resize(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), size).transpose(2, 0, 1)
    return out


class _VideoFrames:
    """Frames of a LeRobot dataset's camera stored as video: decoded once per file, by timestamp."""

    def __init__(self, root: Path, info: dict, key: str, size: int, pd):
        self.root, self.key, self.size, self.fps = root, key, size, float(info["fps"])
        self.template = info.get("video_path") or ""
        if not self.template:
            raise DataError(f"{str(root)!r}: {key!r} is a video feature but info.json has no video_path")
        self.per_episode = "{episode_index" in self.template  # v2.x: one file per episode
        self.episodes = {}
        if not self.per_episode:
            files = sorted((root / "meta" / "episodes").glob("**/*.parquet"))
            if not files:
                raise DataError(f"{str(root)!r}: no meta/episodes/**/*.parquet (needed to locate video frames)")
            table = pd.concat([pd.read_parquet(f) for f in files])
            cols = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp")]
            missing = [c for c in cols if c not in table.columns]
            if missing:
                raise DataError(f"{str(root)!r}: the episode table lacks {', '.join(missing)}")
            for row in table[["episode_index", *cols]].itertuples(index=False):
                self.episodes[int(row[0])] = (int(row[1]), int(row[2]), float(row[3]))
        self.cache: dict[str, dict[int, np.ndarray]] = {}

    def _decode(self, path: Path) -> dict[int, np.ndarray]:
        """-> {frame number (round(time * fps)): (3, H, W) uint8} for the whole file (the last file only is cached)."""
        av = _require_av()
        if str(path) in self.cache:
            return self.cache[str(path)]
        if not path.is_file():
            raise DataError(f"video file {str(path)!r} is missing")
        frames = {}
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    t = frame.time if frame.time is not None else float(frame.pts * frame.time_base)
                    frames[round(t * self.fps)] = _resize(frame.to_ndarray(format="rgb24"), self.size).transpose(2, 0, 1)
        except Exception as e:  # noqa: BLE001 - PyAV raises many error types for bad files
            raise DataError(f"cannot decode {str(path)!r} ({type(e).__name__}: {e})") from None
        self.cache = {str(path): frames}
        return frames

    def get(self, episode_index: np.ndarray, frame_index: np.ndarray) -> np.ndarray:
        out = None
        for e in np.unique(episode_index):
            rows = np.nonzero(episode_index == e)[0]
            if self.per_episode:
                chunk = int(e) // CHUNKS_SIZE
                path = self.root / self.template.format(episode_chunk=chunk, chunk_index=chunk, video_key=self.key,
                                                        episode_index=int(e))
                offset = 0
            else:
                if int(e) not in self.episodes:
                    raise DataError(f"episode {int(e)} is not in the episode table")
                chunk, file, start = self.episodes[int(e)]
                path = self.root / self.template.format(video_key=self.key, chunk_index=chunk, file_index=file)
                offset = round(start * self.fps)
            frames = self._decode(path)
            for r in rows:
                k = offset + int(frame_index[r])
                if k not in frames:
                    raise DataError(f"{str(path)!r} has no frame at {k / self.fps:.3f} s (episode {int(e)}, "
                                    f"frame {int(frame_index[r])})")
                if out is None:
                    out = np.empty((len(episode_index), *frames[k].shape), dtype=np.uint8)
                out[r] = frames[k]
        return out


def load_lerobot(path: str | Path, image_key: str = "", image_size: int = 0) -> LeRobotFrames:
    """Read a local LeRobot dataset (v3.0 or v2.x; camera as embedded images or as video, which needs
    PyAV). `image_size` > 0 resizes frames to that square size (bilinear)."""
    root = Path(path)
    pa, pq, pd = _require_arrow()
    if not root.is_dir():
        partial = sorted(root.parent.glob(f".{root.name}.partial-*")) if root.parent.is_dir() else []
        hint = " (an interrupted generation left only a partial copy)" if partial else ""
        raise DataError(f"dataset directory {str(root)!r} does not exist{hint}")
    if not is_lerobot_dataset(root):
        raise DataError(f"{str(root)!r} is not a LeRobot dataset: meta/info.json is missing")
    try:
        info = json.loads((root / "meta" / "info.json").read_text())
        features = info["features"]
    except (ValueError, KeyError) as e:
        raise DataError(f"{str(root)!r}: meta/info.json is unreadable ({e})") from None
    version = str(info.get("codebase_version", ""))
    if not version.startswith(("v2", "v3")):
        raise DataError(f"{str(root)!r}: LeRobot codebase_version {version!r} is not supported (v2.x, v3.0)")
    images = [k for k, f in features.items() if f.get("dtype") in ("image", "video") and k.startswith("observation.image")]
    key = image_key or (IMAGE_KEY if IMAGE_KEY in images else (images[0] if images else ""))
    if key not in features or features[key].get("dtype") not in ("image", "video"):
        raise DataError(f"{str(root)!r} has no camera feature {key or 'observation.image*'!r}; features: "
                        f"{', '.join(features)}")
    if ACTION_KEY not in features:
        raise DataError(f"{str(root)!r} has no {ACTION_KEY!r} feature")
    is_video = features[key]["dtype"] == "video"
    files = sorted((root / "data").glob("**/*.parquet"))
    if not files:
        raise DataError(f"{str(root)!r}: no data/**/*.parquet files")
    columns = [ACTION_KEY, "episode_index", "frame_index", "task_index"] + ([STATE_KEY] if STATE_KEY in features else [])
    columns += [] if is_video else [key]
    shape = features[key]["shape"]
    hw = shape[1:] if shape[0] == 3 and shape[-1] != 3 else shape[:2]  # (3, H, W) or (H, W, 3)
    parts: dict[str, list] = {c: [] for c in columns}
    for f in files:
        try:
            table = pq.read_table(f, columns=columns)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for bad files
            raise DataError(f"{str(f)!r} is unreadable or lacks a column ({e})") from None
        for c in columns:
            col = table.column(c)
            parts[c].append(_decode_images(col.to_pylist(), key, hw, image_size) if c == key
                            else np.asarray(col.to_pylist()))
    data = {c: np.concatenate(v) for c, v in parts.items()}
    del parts  # the per-file arrays: a second copy of every frame (MT50 at 96 px: gigabytes)
    n = len(data[ACTION_KEY])
    if info.get("total_frames") not in (None, n):
        raise DataError(f"{str(root)!r} is incomplete: info.json says {info['total_frames']} frames, the files hold {n}")
    order = np.lexsort((data["frame_index"], data["episode_index"]))  # episodes contiguous, frames in time order
    if np.array_equal(order, np.arange(n)):
        order = slice(None)  # already in order (as our writer stores them): views, not a third copy of the frames
    if is_video:
        camera = _VideoFrames(root, info, key, image_size, pd).get(data["episode_index"][order], data["frame_index"][order])
    else:
        camera = data[key][order]
    states = data[STATE_KEY] if STATE_KEY in data else np.zeros((n, 0), dtype=np.float32)
    return LeRobotFrames(
        images=torch.from_numpy(camera), states=torch.from_numpy(states[order].astype(np.float32)),
        actions=torch.from_numpy(data[ACTION_KEY][order].astype(np.float32)),
        episode_index=torch.from_numpy(data["episode_index"][order].astype(np.int64)),
        task_index=torch.from_numpy(data["task_index"][order].astype(np.int64)),
        tasks=_read_tasks(root, pd), info={**info, "tinyvla_camera": read_camera(root)},
    )


def read_camera(root: Path) -> dict | None:
    """The camera settings `tinyvla data metaworld` recorded (meta/tinyvla.json), if any."""
    try:
        camera = json.loads((root / "meta" / "tinyvla.json").read_text()).get("camera")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return camera if isinstance(camera, dict) else None


def action_chunks(actions: torch.Tensor, episode_index: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, a) -> (N, steps, a): each frame's next `steps` actions within its episode, the last one
    repeated past the episode's end (frames must be grouped by episode, in time order)."""
    n = len(actions)
    idx = torch.arange(n)[:, None] + torch.arange(steps)[None, :]  # (N, steps)
    # the last frame of each frame's episode
    change = torch.ones(n, dtype=torch.bool)
    change[:-1] = episode_index[1:] != episode_index[:-1]
    ends = torch.nonzero(change)[:, 0]
    last = ends[torch.searchsorted(ends, torch.arange(n))]
    return actions[torch.minimum(idx, last[:, None])]


__all__ = ["LeRobotWriter", "LeRobotFrames", "load_lerobot", "read_camera", "is_lerobot_dataset", "action_chunks",
           "CODEBASE_VERSION"]
