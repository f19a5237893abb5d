"""One readable training loop: behavioural cloning with AdamW, warmup + cosine, clipping, bf16 autocast,
periodic validation, best/last checkpoints written atomically, optional TensorBoard."""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from tinyvla.checkpointing import load_trainer_state, recover_checkpoint_dir, trainer_files
from tinyvla.constants import (ACTION, OBS_IMAGE, OBS_IMAGE_FEATURES, OBS_STATE, TOKEN_MASK, TOKENS, TRAIN_STATE_NAME,
                               WEIGHTS_NAME)
from tinyvla.data.dataset import FrameDataset
from tinyvla.distributed import DistContext
from tinyvla.errors import ConfigError
from tinyvla.features import blank_features, cacheable_vision, cached_features
from tinyvla.policies.base import Policy
from tinyvla.progress import progress_to_terminal
from tinyvla.report import try_write_report
from tinyvla.utils import autocast_context, resolve_device, resolve_precision, set_seed


COMPILE_BACKEND = "inductor"  # train.compile's torch.compile backend (tests trace with "eager" on the CPU)


@dataclass
class TrainConfig:
    # Defaults: the recipe that reached val L2 <= 0.05 on the toy task for 8 of 9 seeds (see docs/toy-task.md).
    steps: int = 1200
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    eval_every: int = 100
    eval_batch_size: int = 512
    time_budget_s: float = 0.0  # stop early after this much training time (0 = no limit)
    num_threads: int = 0  # torch CPU threads (0 = torch's default)
    tensorboard: bool = False
    progress: bool = True
    resume: bool = False  # continue from <out>/last (model, optimiser, scheduler, RNG, data position)
    grad_accum_steps: int = 1  # micro-batches per optimiser step (batch_size is the global batch)
    # Random-shift augmentation (DrQ): pad training images by N px (edge pixels) and crop back at a
    # random offset per image; 0 = off. Deterministic per (seed, step), so a resumed run sees the same.
    augment_shift: int = 0
    # Colour jitter: per image, brightness, contrast and saturation each scaled by U(1 - s, 1 + s); 0 = off.
    augment_color: float = 0.0
    # A frozen pretrained vision tower's features are computed once per data set (and cached on disk,
    # $TINYVLA_CACHE_DIR or ~/.cache/tinyvla) when no augmentation or image ablation changes its input.
    cache_features: bool = True
    # torch.compile the training forward (on a GPU: fewer kernel launches; the first steps pay the
    # compilation, and each new instruction length one more until shapes go dynamic). Off by default.
    compile: bool = False

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.lr <= 0 or self.eval_every < 1:
            raise ValueError("lr and eval_every must be positive")
        if self.augment_shift < 0:
            raise ValueError("augment_shift must be >= 0 (pixels)")
        if not 0.0 <= self.augment_color < 1.0:
            raise ValueError("augment_color must be in [0, 1)")
        if self.grad_accum_steps < 1 or self.batch_size % self.grad_accum_steps:
            raise ValueError("batch_size must be a multiple of grad_accum_steps")


def lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def make_optimizer(policy: Policy, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms, embeddings and positional tables."""
    decay, no_decay = [], []
    for name, p in policy.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "embed" not in name and "token" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    params = [p for g in groups for p in g["params"]]
    on_cuda = bool(params) and all(p.is_cuda for p in params)  # one fused kernel per step on a GPU
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=on_cuda)


class TokenTable:
    """Instructions tokenised once per dataset; a batch gathers rows and trims padding."""

    def __init__(self, policy: Policy, dataset: FrameDataset, device: torch.device):
        ids, mask = policy.tokenizer(dataset.tasks)
        self.ids, self.mask = ids.to(device), mask.to(device)

    def __call__(self, task_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.ids[task_index], self.mask[task_index]
        length = int(mask.sum(dim=1).max())
        return ids[:, :length], mask[:, :length]


def tensor_batch(ds: FrameDataset, idx: torch.Tensor, tokens: TokenTable, device: torch.device,
                 features: torch.Tensor | None = None) -> dict:
    ids, mask = tokens(ds.task_index[idx].to(tokens.ids.device))
    batch = {OBS_IMAGE: ds.images[idx].to(device, non_blocking=True), TOKENS: ids, TOKEN_MASK: mask,
             OBS_STATE: ds.states[idx].to(device, non_blocking=True), ACTION: ds.actions[idx].to(device, non_blocking=True)}
    if features is not None:  # a frozen vision tower's output, computed once (tinyvla.features)
        batch[OBS_IMAGE_FEATURES] = features[idx.to(features.device)].to(device, non_blocking=True)
    return batch


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """(b, c, H, W) -> the same size, each image shifted by up to `pad` px in x and y (edges repeated)."""
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images.float(), (pad, pad, pad, pad), mode="replicate").to(images.dtype)
    dx, dy = (torch.randint(0, 2 * pad + 1, (2, b), generator=generator)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def color_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """(b, 3, H, W) uint8 -> the same, each image's brightness, contrast and saturation scaled by a
    random factor in [1 - strength, 1 + strength] (QueST uses 0.3 on Meta-World)."""
    def luma(x: torch.Tensor) -> torch.Tensor:  # (b, 3, H, W) -> (b, 1, H, W)
        return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]

    f = 1 + (torch.rand(3, images.shape[0], 1, 1, 1, generator=generator) * 2 - 1) * strength  # bright., contrast, sat.
    x = images.float() * f[0]
    mean = luma(x).mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * f[1] + mean
    gray = luma(x)
    x = (x - gray) * f[2] + gray
    return x.round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def offline_l2(policy: Policy, ds: FrameDataset, *, batch_size: int = 512, precision: str = "fp32",
               features: torch.Tensor | None = None) -> float:
    """Mean L2 norm of the action error over a dataset, in the dataset's action units."""
    device = policy.device
    table = TokenTable(policy, ds, device)
    total, n = 0.0, 0
    for start in range(0, len(ds), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(ds)))
        batch = tensor_batch(ds, idx, table, device, features)
        with autocast_context(device, precision):
            pred = policy.predict_action_chunk(batch)  # (b, t, a)
        target = batch[ACTION].reshape(pred.shape[0], -1, pred.shape[-1])[:, : pred.shape[1]].float()
        total += torch.linalg.vector_norm(pred.float() - target, dim=-1).mean(dim=1).sum().item()
        n += len(idx)
    return total / max(n, 1)


@dataclass
class TrainResult:
    best_val_l2: float
    final_val_l2: float
    train_seconds: float
    steps: int
    samples: int
    history: list[dict]


def train(
    policy: Policy, train_ds: FrameDataset, val_ds: FrameDataset, cfg: TrainConfig,
    out_dir: str | Path | None = None, desc: str = "train",
) -> TrainResult:
    set_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    ctx = DistContext.from_env(device)
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    shard = cfg.batch_size // ctx.world_size  # each rank takes a disjoint slice of the global batch
    if cfg.batch_size % ctx.world_size or shard < cfg.grad_accum_steps:
        raise ConfigError(f"train.batch_size {cfg.batch_size} must split evenly over {ctx.world_size} ranks "
                          f"x {cfg.grad_accum_steps} accumulation steps")
    precision = resolve_precision(cfg.precision, device)
    policy.to(device).train()
    model = policy
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(policy, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        model = torch.compile(model, backend=COMPILE_BACKEND)
    out = Path(out_dir) if (out_dir and ctx.is_main) else None  # rank 0 logs and checkpoints
    resume_dir = Path(out_dir) if out_dir else None
    writer = _tensorboard(out) if (cfg.tensorboard and out) else None
    opt = make_optimizer(policy, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    tokens = TokenTable(policy, train_ds, device)
    train_features = val_features = None
    tower = cacheable_vision(policy, augmenting=bool(cfg.augment_shift or cfg.augment_color))
    if tower is not None and cfg.cache_features:
        show_features = cfg.progress and ctx.is_main
        if getattr(policy.config, "input_ablation", "none") == "blank_image":  # one frame's worth of work
            train_features = blank_features(tower, train_ds.images, device)
            val_features = blank_features(tower, val_ds.images, device)
        else:
            train_features = cached_features(tower, train_ds.images, device, "features (train)", show_features)
            val_features = cached_features(tower, val_ds.images, device, "features (val)", show_features)
        if device.type == "cuda":
            train_features = train_features.to(device)
    if device.type == "cuda":  # keep the whole data set on the GPU: it is small
        train_ds = FrameDataset(train_ds.images.to(device), train_ds.actions.to(device), train_ds.states.to(device),
                                train_ds.task_index.to(device), train_ds.tasks, name=train_ds.name, info=train_ds.info)
    gen = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(train_ds), generator=gen)
    pos, start, history, best, train_seconds = 0, 0, [], float("inf"), 0.0
    if cfg.resume:
        if resume_dir is None:
            raise ConfigError("train.resume needs an output directory holding last/")
        if ctx.is_main:
            recover_checkpoint_dir(resume_dir / "last")
            recover_checkpoint_dir(resume_dir / "best")
        ctx.barrier()
        if (resume_dir / "last").is_dir():  # every rank restores the same state
            policy.load_state_dict(load_file(str(resume_dir / "last" / WEIGHTS_NAME), device=str(device)))
            order, pos, state = load_trainer_state(resume_dir / "last", opt, sched, gen)
            start, history, best = state["step"], state["history"], state["best_val_l2"]
            train_seconds = state["train_seconds"]
            if ctx.is_main:
                print(f"resuming from step {start} of {cfg.steps} ({resume_dir / 'last'})")
        elif ctx.is_main:
            print(f"nothing to resume in {resume_dir}; starting from scratch")
    val_l2 = history[-1]["val_l2"] if history else float("nan")
    # A live bar on a terminal; written to a log file (nohup, a cluster job) a bar is megabytes of
    # carriage returns, so there one plain line per evaluation is printed instead.
    show = cfg.progress and ctx.is_main
    log_lines = show and not progress_to_terminal()
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not show or log_lines, dynamic_ncols=True,
               leave=False)
    step = start
    for step in range(start + 1, cfg.steps + 1):
        t0 = time.perf_counter()
        if pos + cfg.batch_size > len(order):  # new epoch
            order, pos = torch.randperm(len(train_ds), generator=gen), 0
        idx = order[pos : pos + cfg.batch_size][ctx.rank :: ctx.world_size]
        pos += cfg.batch_size
        opt.zero_grad(set_to_none=True)
        micro_batches = idx.chunk(cfg.grad_accum_steps)
        for j, micro in enumerate(micro_batches):
            batch = tensor_batch(train_ds, micro.to(train_ds.images.device), tokens, device, train_features)
            gen_aug = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 64 + j)
            if cfg.augment_shift:
                batch[OBS_IMAGE] = random_shift(batch[OBS_IMAGE].cpu(), cfg.augment_shift, gen_aug).to(device)
            if cfg.augment_color:
                batch[OBS_IMAGE] = color_jitter(batch[OBS_IMAGE].cpu(), cfg.augment_color, gen_aug).to(device)
            sync = not ctx.enabled or j == len(micro_batches) - 1  # all-reduce gradients once per step
            with (contextlib.nullcontext() if sync else model.no_sync()), autocast_context(device, precision):
                loss, info = model(batch)
                (loss / len(micro_batches)).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t0
        bar.update(1)
        if writer is not None and step % 10 == 0:
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/grad_norm", grad_norm.item(), step)
            writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
        last = step == cfg.steps or ctx.any(bool(cfg.time_budget_s and train_seconds >= cfg.time_budget_s))
        if (step % cfg.eval_every == 0 or last) and not ctx.is_main:
            ctx.barrier()  # wait while rank 0 evaluates and writes checkpoints
        elif step % cfg.eval_every == 0 or last:
            val_l2 = offline_l2(policy, val_ds, batch_size=cfg.eval_batch_size, precision=precision,
                                features=val_features)
            policy.train()
            record = {"step": step, "samples": step * cfg.batch_size, "train_seconds": round(train_seconds, 3),
                      "loss": loss.item(), "val_l2": val_l2}
            diagnostics = policy.diagnostics(batch)  # e.g. VLA-Adapter's gates and attention mass per source
            if diagnostics:
                record["diagnostics"] = diagnostics
            history.append(record)
            bar.set_postfix(loss=f"{loss.item():.4f}", val_l2=f"{val_l2:.4f}")
            if log_lines:
                print(f"{desc} step {step}/{cfg.steps}  loss {loss.item():.4f}  val_l2 {val_l2:.4f}  "
                      f"{train_seconds:.0f} s", flush=True)
            if writer is not None:
                writer.add_scalar("val/l2", val_l2, step)
                for key, value in diagnostics.items():
                    writer.add_scalar(f"diagnostics/{key}", value, step)
            if out is not None:
                state = {**record, "best_val_l2": min(best, val_l2), "history": history}
                if val_l2 < best:
                    _deployable(policy).save_pretrained(out / "best", extra={TRAIN_STATE_NAME: state})
                policy.save_pretrained(out / "last", files=trainer_files(opt, sched, gen, order, pos, state))
            best = min(best, val_l2)
            ctx.barrier()
        if last:
            break
    bar.close()
    if writer is not None:
        writer.close()
    result = TrainResult(best, val_l2, train_seconds, step, step * cfg.batch_size, history)
    if out is not None:
        (out / "history.json").write_text(json.dumps(result.__dict__, indent=2))
        try_write_report(out)  # report.html; a page that cannot be written is a warning, never a failed run
    ctx.close()
    return result


def _deployable(policy: Policy) -> Policy:
    """What `best/` holds: the policy itself, or with LoRA adapters merged into a plain copy."""
    from tinyvla.lora import has_lora, merged_copy  # peft itself is only imported when merging

    return merged_copy(policy) if has_lora(policy) else policy


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed (pip install 'tinyvla[tensorboard]'); logging to history.json only")
        return None
    return SummaryWriter(str(out / "tb"))
