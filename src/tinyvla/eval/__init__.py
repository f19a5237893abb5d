"""Evaluation, one home: closed-loop success (with Wilson CIs) and offline action error, per environment.

- `tinyvla.eval.results`: the shared result type and report files (results.json / results.md / success.png)
- `tinyvla.eval.toy`: the toy task (offline L2 + closed loop, local checkpoint or a served policy)
- `tinyvla.eval.metaworld`: Meta-World (per-task success, blind control, worker processes, GIFs)
- `tinyvla.eval.libero`: LIBERO (each task from its fixed initial states, blind control; LIBERO's own venv)

`tinyvla eval --env toy|metaworld|libero` is a thin layer over `evaluate_checkpoint` / `evaluate_server` /
`run_metaworld_eval` / `run_libero_eval`."""

from tinyvla.eval.results import ClosedLoopResult, write_results

__all__ = ["ClosedLoopResult", "write_results"]
