"""Fast CPU inference: export a policy's network to ONNX and run it with ONNX Runtime.

`OnnxPolicy` keeps the PyTorch policy's pre/post-processing (validation, tokenizer, normalisation) and
replaces only `predict_normalized`, so it is a drop-in for `predict_action_chunk` / `select_action`.
`quantize=True` adds ONNX Runtime's dynamic int8 quantisation of the weights (VNNI on AVX-512 CPUs)."""

from __future__ import annotations

import tempfile
import warnings
from collections import deque
from pathlib import Path

import numpy as np
import torch

from tinyvla.errors import ConfigError
from tinyvla.policies.base import Policy


class _Network(torch.nn.Module):
    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy

    def forward(self, images, tokens, mask):
        return self.policy.predict_normalized(images, tokens, mask)


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX modes need onnxruntime and onnx: pip install 'tinyvla[fast]'") from None
    return onnxruntime


def export_onnx(policy: Policy, path: str | Path, quantize: bool = False) -> Path:
    """Write the policy's network (images, tokens, mask -> normalised actions) as ONNX; batch and
    instruction length stay dynamic."""
    _require_onnxruntime()
    if policy.state_dim:
        raise ConfigError(f"ONNX export covers policies without a robot-state input; {policy.name!r} reads one "
                          "(use --mode eager)")
    path = Path(path)
    policy = policy.cpu().eval()
    images = torch.zeros(1, 3, policy.config.image_size, policy.config.image_size)
    tokens, mask = policy.tokenizer(["go to the red block"])
    fp32_path = path.with_suffix(".fp32.onnx") if quantize else path
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints: shapes stay dynamic
        torch.onnx.export(
            _Network(policy), (images, tokens, mask), str(fp32_path), input_names=["images", "tokens", "mask"],
            output_names=["actions"], opset_version=17, dynamo=False,
            dynamic_axes={"images": {0: "b"}, "tokens": {0: "b", 1: "l"}, "mask": {0: "b", 1: "l"}, "actions": {0: "b"}},
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32_path), str(path), weight_type=QuantType.QInt8)
        fp32_path.unlink()
    return path


class OnnxPolicy:
    """A Policy whose network runs in ONNX Runtime on the CPU."""

    def __init__(self, policy: Policy, quantize: bool = False, threads: int = 0, onnx_path: str | Path | None = None):
        ort = _require_onnxruntime()
        self.policy = policy.cpu().eval()
        self.config, self.name, self.stats, self.tokenizer = policy.config, policy.name, policy.stats, policy.tokenizer
        self.device = torch.device("cpu")
        if onnx_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tinyvla-onnx-")
            onnx_path = export_onnx(policy, Path(self._tmp.name) / "policy.onnx", quantize=quantize)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._queue: deque[torch.Tensor] = deque()

    def num_parameters(self) -> int:
        return self.policy.num_parameters()

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        images, tokens, mask, _ = self.policy.prepare(batch)
        out = self.session.run(None, {"images": images.numpy(), "tokens": tokens.numpy(), "mask": mask.numpy()})[0]
        return self.policy.unnormalize_action(torch.from_numpy(np.asarray(out, dtype=np.float32)))

    def select_action(self, batch: dict) -> torch.Tensor:
        if not self._queue:
            self._queue.extend(self.predict_action_chunk(batch)[:, : self.config.n_action_steps].transpose(0, 1))
        return self._queue.popleft()

    def reset(self) -> None:
        self._queue.clear()
