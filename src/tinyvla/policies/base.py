"""The Policy interface (LeRobot-style) and Hugging Face-style checkpoints.

A checkpoint directory holds `config.json` (policy type, format version, config),
`model.safetensors`, `tokenizer.json` and `stats.json` (action normalisation statistics).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tinyvla.config import from_dict, to_dict
from tinyvla.constants import (
    ACTION,
    OBS_STATE,
    CHECKPOINT_FORMAT_VERSION,
    CONFIG_NAME,
    OBS_IMAGE,
    OBS_IMAGE_FEATURES,
    STATS_NAME,
    TASK,
    TOKEN_MASK,
    TOKENIZER_NAME,
    TOKENS,
    WEIGHTS_NAME,
)
from tinyvla.errors import CheckpointError, ConfigError, DataError
from tinyvla.tokenizer import InstructionTokenizer

CONSTANT_INSTRUCTION = "do the task"


@dataclass
class PolicyConfig:
    """Fields every policy shares. Subclasses add their architecture."""

    type: ClassVar[str] = ""
    image_size: int = 64
    action_dim: int = 2
    chunk_size: int = 1  # actions predicted per call
    n_action_steps: int = 1  # actions executed from a chunk before predicting again
    # Predict a chunk at EVERY step and execute the weighted mean of the overlapping predictions for it
    # (weights exp(-coef * i), oldest first); n_action_steps is then not used.
    # Training only: replace the robot state by the data set's mean (zero after normalisation) for this
    # fraction of samples, so the policy cannot act from its own motion alone (the "copycat" shortcut).
    state_dropout: float = 0.0
    temporal_ensemble: bool = False
    temporal_ensemble_coef: float = 0.01
    context_length: int = 32
    # Baselines are the same model with one input removed, applied in training AND evaluation.
    input_ablation: Literal["none", "blank_image", "constant_instruction"] = "none"
    # How the training data's camera was set up (Meta-World: camera, camera_pos, crop), taken from the
    # dataset, so that evaluation renders what the policy was trained on. Empty = not recorded.
    camera: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"n_action_steps must be in [1, chunk_size={self.chunk_size}]")
        if self.action_dim < 1 or self.image_size < 1 or self.context_length < 1:
            raise ValueError("action_dim, image_size and context_length must be positive")
        if not 0.0 <= self.state_dropout <= 1.0:
            raise ValueError("state_dropout must be in [0, 1]")
        if self.temporal_ensemble_coef < 0:
            raise ValueError("temporal_ensemble_coef must be >= 0")


def atomic_write_dir(target: Path, write: "callable") -> None:
    """Write a directory via a temp sibling + rename, so a crash never leaves a half-written one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a checkpoint is an ordinary directory
        for f in tmp.iterdir():  # flush file contents before the rename makes them visible
            os.chmod(f, 0o666 & ~umask)
            with open(f, "rb+") as fh:
                os.fsync(fh.fileno())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Policy(nn.Module):
    """Batches are dicts keyed by `tinyvla.constants`: OBS_IMAGE, TASK (or TOKENS + TOKEN_MASK), ACTION."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: PolicyConfig, *, tokenizer: InstructionTokenizer, stats: dict):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.stats = stats
        try:
            mean = torch.tensor(stats["action"]["mean"], dtype=torch.float32)
            std = torch.tensor(stats["action"]["std"], dtype=torch.float32)
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"normalisation stats lack action mean/std ({e})") from None
        if mean.shape != (config.action_dim,) or std.shape != (config.action_dim,):
            raise DataError(f"action stats have shape {tuple(mean.shape)}, policy action_dim is {config.action_dim}")
        self.register_buffer("action_mean", mean, persistent=False)
        self.register_buffer("action_std", std.clamp_min(1e-6), persistent=False)
        if self.state_dim:
            state_stats = stats.get("state") or {}
            s_mean = torch.tensor(state_stats.get("mean", [0.0] * self.state_dim), dtype=torch.float32)
            s_std = torch.tensor(state_stats.get("std", [1.0] * self.state_dim), dtype=torch.float32)
            if s_mean.shape != (self.state_dim,) or s_std.shape != (self.state_dim,):
                raise DataError(f"state stats have shape {tuple(s_mean.shape)}, policy state_dim is {self.state_dim}")
            self.register_buffer("state_mean", s_mean, persistent=False)
            self.register_buffer("state_std", s_std.clamp_min(1e-6), persistent=False)
        self._constant_tokens = tokenizer([CONSTANT_INSTRUCTION])
        self._queue: deque[torch.Tensor] = deque()
        self._ensemblers: list = []  # one TemporalEnsembler per batch row, with temporal_ensemble

    # ---- subclasses implement this ------------------------------------------------------------
    def predict_normalized(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                           state: torch.Tensor | None = None) -> torch.Tensor:
        """(b, 3, H, W) float in [0, 1], (b, l) ids, (b, l) mask, (b, s) normalised state or None
        -> normalised actions (b, t, a)."""
        raise NotImplementedError

    @property
    def state_dim(self) -> int:
        """Robot-state size the policy reads (0 = it ignores proprioception)."""
        return max(0, getattr(self.config, "state_dim", 0))

    @classmethod
    def upgrade_config(cls, raw: dict) -> dict:
        """Map a config dict saved by an older tinyvla onto the current fields (default: unchanged)."""
        return raw

    @classmethod
    def from_checkpoint_config(cls, config: PolicyConfig, *, tokenizer: InstructionTokenizer, stats: dict) -> "Policy":
        """Build the module that a checkpoint's weights are loaded into (no pretrained weights read)."""
        return cls(config, tokenizer=tokenizer, stats=stats)

    def diagnostics(self, batch: dict) -> dict[str, float]:
        """Scalars worth logging during training (e.g. gate values); empty by default."""
        return {}

    # ---- pre/post-processing -----------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.action_mean.device

    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Validate a batch and return (images, tokens, mask, normalised state or None) on the policy's device.

        With OBS_IMAGE_FEATURES in the batch, "images" are a frozen vision tower's features (b, p, d)."""
        cfg = self.config
        if OBS_IMAGE not in batch:
            raise DataError(f"batch lacks {OBS_IMAGE!r}")
        images = batch[OBS_IMAGE]
        if not isinstance(images, torch.Tensor):
            raise DataError(f"{OBS_IMAGE} must be a torch tensor, got {type(images).__name__}")
        expected = (3, cfg.image_size, cfg.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise DataError(f"{OBS_IMAGE} must have shape (batch, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            images = images.to(self.device).float() / 255.0
        elif images.dtype.is_floating_point:
            images = images.to(self.device, torch.float32)
        else:
            raise DataError(f"{OBS_IMAGE} must be uint8 or float in [0, 1], got {images.dtype}")
        if not torch.isfinite(images).all():
            raise DataError(f"{OBS_IMAGE} contains NaN or inf")
        if OBS_IMAGE_FEATURES in batch:  # training with a frozen tower: its output stands in for the images
            images = batch[OBS_IMAGE_FEATURES].to(self.device, torch.float32)
        if TOKENS in batch:
            tokens, mask = batch[TOKENS], batch[TOKEN_MASK]
        elif TASK in batch:
            tokens, mask = self.tokenizer(batch[TASK])
        else:
            raise DataError(f"batch lacks an instruction ({TASK!r})")
        if tokens.shape[0] != images.shape[0]:
            raise DataError(f"{tokens.shape[0]} instructions for {images.shape[0]} images")
        if cfg.input_ablation == "blank_image" and OBS_IMAGE_FEATURES not in batch:  # features: already blank's
            images = torch.zeros_like(images)
        elif cfg.input_ablation == "constant_instruction":
            t, m = self._constant_tokens
            tokens, mask = t.expand(images.shape[0], -1), m.expand(images.shape[0], -1)
        return images, tokens.to(self.device), mask.to(self.device), self._prepare_state(batch, images.shape[0])

    def _prepare_state(self, batch: dict, b: int) -> torch.Tensor | None:
        s = self.state_dim
        if not s:
            return None
        if OBS_STATE not in batch:
            raise DataError(f"batch lacks {OBS_STATE!r}: this policy reads a robot state of size {s}")
        state = batch[OBS_STATE]
        if not isinstance(state, torch.Tensor):
            state = torch.as_tensor(state)
        if state.ndim != 2 or tuple(state.shape) != (b, s):
            raise DataError(f"{OBS_STATE} must have shape (batch, {s}) = ({b}, {s}), got {tuple(state.shape)}")
        if not state.dtype.is_floating_point:
            raise DataError(f"{OBS_STATE} must be a float tensor, got {state.dtype}")
        state = state.to(self.device, torch.float32)
        if not torch.isfinite(state).all():
            raise DataError(f"{OBS_STATE} contains NaN or inf")
        state = (state - self.state_mean) / self.state_std
        if self.training and self.config.state_dropout > 0:
            keep = torch.rand(b, 1, device=state.device) >= self.config.state_dropout
            state = state * keep
        return state

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return action * self.action_std + self.action_mean

    # ---- LeRobot-style API ---------------------------------------------------------------------
    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Behavioural cloning: MSE between predicted and demonstrated (normalised) actions."""
        pred = self.predict_normalized(*self.prepare(batch))  # (b, t, a)
        target = self.target_chunk(batch, pred.shape[1])
        loss = torch.nn.functional.mse_loss(pred.float(), self.normalize_action(target))
        return loss, {"loss": loss.detach()}

    def target_chunk(self, batch: dict, steps: int) -> torch.Tensor:
        """The batch's actions as (b, steps, a); a data set must hold at least `steps` future actions."""
        if ACTION not in batch:
            raise DataError(f"training batch lacks {ACTION!r}")
        target = batch[ACTION].to(self.device, torch.float32)
        b = target.shape[0]
        if target.shape[-1] != self.config.action_dim:
            raise DataError(f"actions have dimension {target.shape[-1]}, the policy expects {self.config.action_dim}")
        target = target.reshape(b, -1, self.config.action_dim)
        if target.shape[1] < steps:
            raise DataError(f"actions hold {target.shape[1]} step(s) per frame; chunk_size {steps} needs {steps}")
        return target[:, :steps]

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        """-> actions (b, t, a) in the dataset's units."""
        was_training = self.training
        self.eval()
        try:
            return self.unnormalize_action(self.predict_normalized(*self.prepare(batch)).float())
        finally:
            self.train(was_training)

    @torch.no_grad()
    def select_action(self, batch: dict) -> torch.Tensor:
        """-> one action (b, a); re-plans every `n_action_steps` steps from a fresh chunk, or at every
        step with `temporal_ensemble` (the mean of the overlapping chunks' predictions)."""
        if self.config.temporal_ensemble:
            from tinyvla.ensemble import TemporalEnsembler

            chunk = self.predict_action_chunk(batch).cpu().numpy()  # (b, t, a)
            if len(self._ensemblers) != len(chunk):
                self._ensemblers = [TemporalEnsembler(self.config.temporal_ensemble_coef) for _ in chunk]
            for e, c in zip(self._ensemblers, chunk):
                e.add(c)
            return torch.from_numpy(np.stack([e.act() for e in self._ensemblers])).float()
        if not self._queue:
            chunk = self.predict_action_chunk(batch)[:, : self.config.n_action_steps]  # (b, t, a)
            self._queue.extend(chunk.transpose(0, 1))
        return self._queue.popleft()

    def train(self, mode: bool = True) -> "Policy":
        """As nn.Module.train, but frozen pretrained towers stay in eval mode (their dropout off, their
        batch-norm statistics the pretrained ones)."""
        super().train(mode)
        from tinyvla.modules.towers import is_frozen

        for module in self.modules():
            if module is not self and is_frozen(module):
                module.eval()
        return self

    def reset(self) -> None:
        self._queue.clear()
        self._ensemblers = []

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_counts(self) -> dict[str, int]:
        """{"backbone": vision-language encoders, "policy": the rest (fusion, action head, ...)}."""
        return {"backbone": 0, "policy": self.num_parameters()}

    # ---- checkpoints ---------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, extra: dict[str, Any] | None = None,
                        files: dict[str, Any] | None = None) -> None:
        """Write the checkpoint atomically. `extra`: name -> JSON content; `files`: name -> writer(path)."""
        meta = {"type": self.name, "format_version": CHECKPOINT_FORMAT_VERSION, "config": to_dict(self.config)}
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}

        def write(tmp: Path) -> None:
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
            self.tokenizer.save(tmp / TOKENIZER_NAME)
            (tmp / STATS_NAME).write_text(json.dumps(self.stats, indent=2))
            for name, content in (extra or {}).items():
                (tmp / name).write_text(json.dumps(content, indent=2))
            for name, writer in (files or {}).items():
                writer(tmp / name)

        atomic_write_dir(Path(directory), write)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "Policy":
        """Load any registered policy from a checkpoint directory (dispatching on its `type`)."""
        from tinyvla.policies.registry import get_policy_class

        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"checkpoint directory {str(directory)!r} does not exist")
        missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME, STATS_NAME) if not (directory / n).is_file()]
        if missing:
            raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete: missing {', '.join(missing)}")
        try:
            meta = json.loads((directory / CONFIG_NAME).read_text())
            stats = json.loads((directory / STATS_NAME).read_text())
            policy_type, version, raw_config = meta["type"], meta["format_version"], meta["config"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"checkpoint {str(directory)!r} has a corrupt config or stats file ({e})") from None
        if version > CHECKPOINT_FORMAT_VERSION:
            raise CheckpointError(f"checkpoint format {version} is newer than this tinyvla ({CHECKPOINT_FORMAT_VERSION})")
        policy_cls = get_policy_class(policy_type)
        if cls is not Policy and not issubclass(policy_cls, cls):
            raise CheckpointError(f"checkpoint holds a {policy_type!r} policy, not {cls.name!r}")
        try:
            config = from_dict(policy_cls.config_class, policy_cls.upgrade_config(raw_config))
        except ConfigError as e:
            raise CheckpointError(f"checkpoint {str(directory)!r}: {e}") from None
        try:
            tokenizer = InstructionTokenizer.load(directory / TOKENIZER_NAME, config.context_length)
        except Exception as e:  # tokenizers raises its own exception types for corrupt JSON
            raise CheckpointError(f"checkpoint {str(directory)!r} has a corrupt tokenizer ({e})") from None
        try:
            policy = policy_cls.from_checkpoint_config(config, tokenizer=tokenizer, stats=stats)
        except (ConfigError, DataError) as e:  # a config edited by hand, or stats that do not fit it
            raise CheckpointError(f"checkpoint {str(directory)!r}: {e}") from None
        try:
            state = load_file(str(directory / WEIGHTS_NAME))
        except Exception as e:  # safetensors raises SafetensorError / OSError for corrupt files
            raise CheckpointError(f"checkpoint {str(directory)!r} has corrupt weights ({e})") from None
        try:
            result = policy.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise CheckpointError(f"checkpoint {str(directory)!r} does not match its config: {str(e).splitlines()[-1]}") from None
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"checkpoint {str(directory)!r} does not match the {policy_type!r} architecture: "
                f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
            )
        return policy.to(device)
