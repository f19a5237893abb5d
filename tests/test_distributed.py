"""DDP with torchrun on 2 CPU ranks (gloo): ranks stay identical, the loss falls, and the result
matches a single process at the same global batch."""

import json
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).parent / "ddp_worker.py"


def run_worker(out: Path, nproc: int, accum: int = 1) -> None:
    cmd = [sys.executable, str(WORKER), str(out), str(accum)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(WORKER), str(out), str(accum)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_ranks_match_one_process(tmp_path):
    run_worker(tmp_path / "ddp", nproc=2)
    r0 = json.loads((tmp_path / "ddp" / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "ddp" / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["digest"] == r1["digest"], "weights diverged across ranks"
    losses = [h["loss"] for h in r0["history"]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert (tmp_path / "ddp" / "ckpt" / "last" / "model.safetensors").is_file()  # rank 0 checkpoints

    run_worker(tmp_path / "single", nproc=1, accum=2)  # same global batch, as 2 accumulated micro-batches
    single = json.loads((tmp_path / "single" / "rank0.json").read_text())
    assert abs(single["final_val_l2"] - r0["final_val_l2"]) < 1e-3, (single["final_val_l2"], r0["final_val_l2"])
    for a, b in zip(single["params"], r0["params"]):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-3
