"""Pre-computed image features for a frozen pretrained vision tower.

A frozen tower maps the same image to the same features at every epoch, so training computes them once
per data set and reads them from memory (and from a disk cache, keyed by the tower's weights and the
images' bytes, so a second run or seed pays nothing). On a CPU this turns a tower-bound step into a
head-bound one. Only without image augmentation and without an image ablation: both change what the
tower sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from tinyvla.modules.towers import is_frozen


def cache_root() -> Path:
    return Path(os.environ.get("TINYVLA_CACHE_DIR") or Path.home() / ".cache" / "tinyvla") / "features"


def cacheable_vision(policy: nn.Module, augmenting: bool) -> nn.Module | None:
    """The policy's vision tower when its output depends on the image alone and never changes, and no
    augmentation changes the images it sees; else None."""
    vision = getattr(policy, "vision", None)
    if vision is None or not is_frozen(vision) or getattr(vision, "cond_dim", 0):  # FiLM reads the instruction
        return None
    if augmenting:
        return None
    return vision


def blank_features(tower: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The features a blank-image ablation feeds the policy: the tower's output for an all-black frame, the same
    for every frame (one forward pass, an expanded view: no memory per frame)."""
    one = compute_features(tower, torch.zeros_like(images[:1]), device, progress=False).to(device)
    return one.expand(len(images), *one.shape[1:])


def _fingerprint(tower: nn.Module, images: torch.Tensor) -> str:
    h = hashlib.sha1()
    h.update(type(tower).__name__.encode())
    # What the tower does to an image besides its weights: input size, normalisation (non-persistent buffers).
    settings = {k: v for k, v in vars(tower).items() if isinstance(v, (int, float, str, bool)) and not k.startswith("_")}
    h.update(json.dumps(settings, sort_keys=True).encode())
    tensors = {**dict(tower.named_parameters()), **dict(tower.named_buffers())}
    for name, t in sorted(tensors.items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy())
    h.update(json.dumps(list(images.shape)).encode())
    h.update(str(images.dtype).encode())
    h.update(images.cpu().contiguous().numpy())  # the array's own buffer: no copy of a many-GB image tensor
    return h.hexdigest()[:24]


SHARD_FRAMES = 8192  # frames per partial file: an interrupted computation keeps what it finished


@torch.no_grad()
def compute_features(tower: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256,
                     desc: str = "features", progress: bool = True, parts: Path | None = None) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (N, p, d) float16 tower features, batch by batch. With `parts` (a folder), every
    `SHARD_FRAMES` frames are also saved there and read back on a rerun, so a crash costs at most one shard."""
    was_training = tower.training
    tower.eval()
    # Channels-last convolutions: ~1.25x faster for EfficientNet on a CPU, the same features to ~3e-6 relative
    # (below the float16 they are stored in); the tower's weights go back to their layout afterwards.
    tower.to(memory_format=torch.channels_last)
    out: torch.Tensor | None = None  # filled in place: a list + torch.cat would need twice the memory at the end
    bar = tqdm(total=len(images), desc=desc, disable=not progress, leave=False, unit="frame")
    try:
        for shard in range(0, len(images), SHARD_FRAMES):
            stop = min(shard + SHARD_FRAMES, len(images))
            part = parts / f"{shard:010d}-{stop:010d}.safetensors" if parts is not None else None
            feats = _load_part(part, stop - shard)
            if feats is not None:
                out = out if out is not None else torch.empty((len(images), *feats.shape[1:]), dtype=torch.float16)
                out[shard:stop] = feats
                bar.update(stop - shard)
                continue
            for start in range(shard, stop, batch_size):  # straight into the output: no per-shard list + cat
                x = images[start : min(start + batch_size, stop)].to(device).float() / 255.0
                y = tower(x.contiguous(memory_format=torch.channels_last))
                out = out if out is not None else torch.empty((len(images), *y.shape[1:]), dtype=torch.float16)
                out[start : start + len(x)] = y
                bar.update(len(x))
            _save_part(part, out[shard:stop])
    finally:
        bar.close()
        tower.to(memory_format=torch.contiguous_format)
        tower.train(was_training)
    if out is None:
        raise ValueError("no images to compute features of")
    return out


def _load_part(part: Path | None, frames: int) -> torch.Tensor | None:
    if part is None or not part.is_file():
        return None
    try:
        feats = load_file(str(part))["features"]
    except Exception:  # a truncated or foreign file: compute again
        return None
    return feats if len(feats) == frames else None


def _save_part(part: Path | None, feats: torch.Tensor) -> None:
    if part is None:
        return
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        tmp = part.with_name(f".{part.name}.tmp-{os.getpid()}")
        save_file({"features": feats.contiguous()}, str(tmp))
        os.replace(tmp, part)
    except OSError as e:  # a read-only or full disk costs the cache, not the run
        warnings.warn(f"feature cache not written ({e})", stacklevel=3)


def cached_features(tower: nn.Module, images: torch.Tensor, device: torch.device, desc: str = "features",
                    progress: bool = True) -> torch.Tensor:
    """`compute_features`, read from / written to the disk cache: a folder of shards (`<key>.parts/`, each written
    atomically; a damaged one is recomputed), so a computation cut short resumes from its finished shards and a
    finished one is read back without ever holding a second copy of the features (writing one many-GB file would:
    MT50's training split is 7 GB). A single `<key>.safetensors` file (the cache before session 25) is still read."""
    key = _fingerprint(tower, images)
    path = cache_root() / f"{key}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["features"]
        except Exception:  # a truncated or foreign file: compute again
            pass
    return compute_features(tower, images, device, desc=desc, progress=progress, parts=cache_root() / f"{key}.parts")
