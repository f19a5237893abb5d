"""Closed-loop evaluation on Meta-World: success rate per task with a confidence interval, and a blind control.

Environments run in worker processes (one per core by default); `envs` episodes run at once, and the
policy plans for all of them that need a chunk in one batch in the main process. The batches are a function of
`envs` alone (slots in a fixed order, whatever the worker count), because a float result depends on the batch it
was computed in and a closed loop amplifies the last bit: with the same `envs` and torch threads, an evaluation
gives the same numbers with any `workers`. Each env asks for a camera frame only when the policy will read it: a
policy that executes `n_action_steps` actions per chunk needs one image every `n_action_steps` steps
(with temporal ensembling it plans, and so reads a frame, at every step).
Episodes are fixed by (task, seed), so two evaluations of one checkpoint see the same scenes. The
camera (name, position, crop) is the checkpoint's, i.e. its training data's; asking for another is an error.
After the sighted pass, a blind control replays the same episodes with the camera of another scene
(see `evaluate_metaworld`): the drop in success is how much the policy's success depends on what it sees.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.ensemble import TemporalEnsembler
from tinyvla.envs.metaworld import MT50, camera_settings, difficulty_of, parse_camera_pos, resolve_tasks
from tinyvla.errors import ConfigError
from tinyvla.eval.results import ClosedLoopResult, save_gif, write_results
from tinyvla.report import try_write_report
from tinyvla.progress import progress_interval
from tinyvla.utils import autocast_context

EVAL_SEED_BASE = 10_000_000  # far from the seeds `tinyvla data metaworld` draws demonstrations from
SHADOW_SEED_OFFSET = 500  # the blind control's other scene: eval_seed(...) + 500, same task, never evaluated itself


@dataclass
class MetaWorldEvalConfig:
    tasks: str = "mt10"
    episodes: int = 20  # per task
    seed: int = 0
    max_steps: int = 500
    # "" / None: the checkpoint's recorded camera settings (else corner2, own position, no crop)
    camera: str = ""
    camera_pos: str | list | None = None  # close | closer | X,Y,Z | [x, y, z]
    crop: float | None = None
    blind: bool = True  # also run the blind control (the same episodes seen through another scene's camera)
    workers: int = 2  # env processes: speed only
    envs: int = 16  # episodes at once (batched through the policy together): part of what the numbers depend on
    envs_per_worker: int | None = None  # older spelling: envs = workers * envs_per_worker when given
    videos: int = 1  # episodes recorded per task (GIF), sighted pass only
    precision: str = "fp32"

    @property
    def episodes_at_once(self) -> int:
        return self.workers * self.envs_per_worker if self.envs_per_worker else self.envs

    def validate(self) -> None:
        if min(self.episodes, self.workers, self.envs, self.max_steps, self.envs_per_worker or 1) < 1:
            raise ConfigError("--episodes, --workers, --envs, --envs-per-worker and --max-steps must be >= 1")
        if self.blind and self.episodes > SHADOW_SEED_OFFSET:
            raise ConfigError(f"the blind control takes its scenes {SHADOW_SEED_OFFSET} seeds on: at most "
                              f"{SHADOW_SEED_OFFSET} episodes per task with it (or --no-blind)")


def eval_seed(seed: int, task: str, k: int) -> int:
    return EVAL_SEED_BASE + seed * 100_000 + MT50.index(task) * 1_000 + k


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(np.allclose(a, b))  # positions and crops: parsed flags vs floats read back from JSON


def resolve_camera(cfg: MetaWorldEvalConfig, recorded: dict | None, image_size: int) -> dict:
    """{camera, camera_pos, crop} to render with: the checkpoint's `recorded` settings (its training
    data's); a value `cfg` sets must agree with them, since a policy shown another viewpoint would be
    evaluated on a scene it was never trained on. Without a record: cfg's values, else the defaults."""
    out = {"camera": "corner2", "camera_pos": None, "crop": 1.0}
    if recorded:
        out.update({k: recorded[k] for k in out if k in recorded})
        pos = parse_camera_pos(out["camera_pos"])
        out["camera_pos"] = list(pos) if pos else None
    pos = parse_camera_pos(cfg.camera_pos)
    asked = {"camera": cfg.camera or None, "camera_pos": list(pos) if pos else None,
             "crop": None if cfg.crop is None else float(cfg.crop)}
    for key, value in asked.items():
        if value is None:
            continue
        if recorded and not _same(value, out[key]):
            raise ConfigError(f"--{key.replace('_', '-')} {value} differs from the checkpoint's {out[key]} (the camera "
                              "its training data was rendered with); leave it out to use the checkpoint's")
        out[key] = value
    settings = camera_settings(out["camera"], out["camera_pos"], out["crop"], image_size)  # validates
    return {k: settings[k] for k in out}


# ---- worker process -------------------------------------------------------------------------------
def _worker(conn, image_size: int, camera: dict, max_steps: int) -> None:
    """Holds one env per slot; answers ("reset", [(slot, task, seed, shadow_seed)]) and
    ("step", [(slot, action, render)]). A slot reset with a shadow seed (the blind control) also runs a
    shadow env of the same task from that seed, stepped with the same actions: the observation then
    has the shadow's image and the slot env's robot state; success and the end come from the slot env."""
    from tinyvla.envs.metaworld import MetaWorldEnv

    envs: dict[int, MetaWorldEnv] = {}
    shadows: dict[int, MetaWorldEnv] = {}
    blind: set[int] = set()  # slots whose episode is seen through their shadow

    def env(pool: dict, slot: int, task: str) -> MetaWorldEnv:
        if slot not in pool or pool[slot].task != task:
            if slot in pool:
                pool[slot].close()
            pool[slot] = MetaWorldEnv(task, image_size, max_steps=max_steps, **camera)
        return pool[slot]

    try:
        while True:
            cmd, items = conn.recv()
            if cmd == "close":
                break
            out = []
            if cmd == "reset":
                for slot, task, seed, shadow_seed in items:
                    obs, info = env(envs, slot, task).reset(seed=seed, render=shadow_seed is None)
                    blind.discard(slot)
                    if shadow_seed is not None:
                        blind.add(slot)
                        obs["image"] = env(shadows, slot, task).reset(seed=shadow_seed)[0]["image"]
                    out.append((slot, obs, info["instruction"], False, False))
            else:
                for slot, action, render in items:
                    obs, _, success, truncated, _ = envs[slot].step(action, render=render and slot not in blind)
                    if slot in blind:  # the shadow's own success is ignored; it ends with the slot env (same max_steps)
                        obs["image"] = shadows[slot].step(action, render=render)[0]["image"]
                    out.append((slot, obs, None, success, success or truncated))
            conn.send(("ok", out))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        for m in [*envs.values(), *shadows.values()]:
            m.close()


class _EnvPool:
    """`slots` envs spread over `workers` processes, slot s on process s // ceil(slots / workers)."""

    def __init__(self, workers: int, slots: int, image_size: int, camera: dict, max_steps: int):
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, image_size, camera, max_steps), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.slots = slots
        self.per_worker = -(-slots // workers)

    def call(self, cmd: str, items: list[tuple]) -> list[tuple]:
        """Send each worker its slots' items at once (they run in parallel), then gather."""
        by_worker: dict[int, list] = {}
        for item in items:
            by_worker.setdefault(item[0] // self.per_worker, []).append(item)
        for w, chunk in by_worker.items():
            self.conns[w].send((cmd, chunk))
        out = []
        for w in by_worker:
            status, payload = self.conns[w].recv()
            if status != "ok":
                raise RuntimeError(f"Meta-World worker failed: {payload}")
            out += payload
        return out

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("close", []))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


@dataclass
class _Slot:
    task: str = ""
    k: int = 0
    seed: int = 0
    obs: dict | None = None
    instruction: str = ""
    queue: deque = field(default_factory=deque)
    ensembler: TemporalEnsembler | None = None  # with temporal ensembling: this episode's overlapping chunks
    steps: int = 0
    frames: list | None = None


@dataclass
class MetaWorldResult:
    """The sighted pass (`seconds`, `env_steps` count it alone) and, unless disabled, the blind control."""
    per_task: dict[str, ClosedLoopResult]
    seconds: float
    env_steps: int
    videos: list[str]
    camera: dict = field(default_factory=dict)  # {camera, camera_pos, crop} rendered with
    blind: dict[str, ClosedLoopResult] | None = None
    # Episodes at once and the policy's torch threads: with the checkpoint, scenes and precision, what the numbers
    # depend on (so that a rerun can match them).
    envs: int = 0
    threads: int = 0

    def to_dict(self) -> dict:
        total = ClosedLoopResult(sum(r.episodes for r in self.per_task.values()),
                                 sum(r.successes for r in self.per_task.values()),
                                 float(np.mean([r.mean_steps for r in self.per_task.values()])))
        rows = {}
        for task, r in self.per_task.items():
            lo, hi = r.confidence_interval()
            rows[task] = {"episodes": r.episodes, "successes": r.successes, "success_rate": r.success_rate,
                          "success_ci95": [lo, hi], "mean_episode_steps": r.mean_steps,
                          "difficulty": difficulty_of(task)}
            if self.blind is not None:  # percentage points of success that need the right scene's image
                b = self.blind[task].success_rate
                rows[task].update(blind_success=b, vision_dependence=round(100 * (r.success_rate - b), 2))
        groups = {}
        for task, row in rows.items():
            groups.setdefault(row["difficulty"], []).append(row["success_rate"])
        lo, hi = total.confidence_interval()
        mean = float(np.mean([r["success_rate"] for r in rows.values()]))
        overall = {"episodes": total.episodes, "successes": total.successes, "success_rate": total.success_rate,
                   "success_ci95": [lo, hi]}
        if self.blind is not None:
            blind = float(np.mean([r["blind_success"] for r in rows.values()]))
            overall.update(blind_success=blind, vision_dependence=round(100 * (mean - blind), 2))
        return {"tasks": rows, "mean_success_rate": mean, "overall": overall, "camera": self.camera,
                "by_difficulty": {g: float(np.mean(v)) for g, v in groups.items()},
                "envs": self.envs, "threads": self.threads, "seconds": self.seconds, "env_steps": self.env_steps,
                "env_steps_per_s": self.env_steps / max(self.seconds, 1e-9), "videos": self.videos}


def _rollout(policy, pool: _EnvPool, cfg: MetaWorldEvalConfig, tasks: list[str], *, blind: bool,
             out: Path | None, progress: bool) -> tuple[dict[str, ClosedLoopResult], int, list[str]]:
    """Every task's `episodes` fixed scenes through `pool`'s slots -> (per task result, env steps, videos)."""
    config = getattr(policy, "config", None)
    n_steps = int(getattr(config, "n_action_steps", 1))
    ensemble = bool(getattr(config, "temporal_ensemble", False))  # plan every step, execute the ensembled action
    coef = float(getattr(config, "temporal_ensemble_coef", 0.01))
    device = getattr(policy, "device", torch.device("cpu"))
    pending = deque((task, k) for task in tasks for k in range(cfg.episodes))
    slots: dict[int, _Slot] = {}
    results = {task: [0, 0, 0] for task in tasks}  # episodes, successes, steps
    videos, env_steps = [], 0
    bar = tqdm(total=len(pending), desc="blind control" if blind else "meta-world episodes", unit="ep",
               disable=not progress, mininterval=progress_interval())

    def start(slot_ids: list[int]) -> None:
        items = []
        for s in slot_ids:
            task, k = pending.popleft()
            slots[s] = _Slot(task=task, k=k, seed=eval_seed(cfg.seed, task, k),
                             ensembler=TemporalEnsembler(coef) if ensemble else None,
                             frames=[] if (out is not None and not blind and k < cfg.videos) else None)
            items.append((s, task, slots[s].seed, slots[s].seed + SHADOW_SEED_OFFSET if blind else None))
        for s, obs, instruction, _, _ in pool.call("reset", items):
            slots[s].obs, slots[s].instruction = obs, instruction
            if slots[s].frames is not None:
                slots[s].frames.append(obs["image"])

    try:
        start([s for s in range(pool.slots) if pending][: len(pending)])
        while slots:
            plan = sorted(s for s, sl in slots.items() if not sl.queue)  # rows in slot order: see the module doc
            if plan:
                batch = {OBS_IMAGE: torch.from_numpy(np.stack([slots[s].obs["image"] for s in plan])),
                         OBS_STATE: torch.from_numpy(np.stack([slots[s].obs["state"] for s in plan])),
                         TASK: [slots[s].instruction for s in plan]}
                with autocast_context(device, cfg.precision):
                    chunks = policy.predict_action_chunk(batch).float().cpu().numpy()  # (b, t, a)
                for s, chunk in zip(plan, chunks):
                    if slots[s].ensembler is not None:  # one action queued: plan (and render) again next step
                        slots[s].ensembler.add(chunk)
                        slots[s].queue.append(slots[s].ensembler.act())
                    else:
                        slots[s].queue.extend(chunk[:n_steps])
            items = []
            for s, sl in slots.items():
                action = sl.queue.popleft()
                items.append((s, action, not sl.queue or sl.frames is not None))
            finished = []
            for s, obs, _, success, done in pool.call("step", items):
                sl = slots[s]
                sl.steps += 1
                env_steps += 1
                if obs["image"] is not None or sl.obs is None:
                    sl.obs = obs
                else:
                    sl.obs = {"image": sl.obs["image"], "state": obs["state"]}
                if sl.frames is not None:
                    sl.frames.append(obs["image"])
                if done:
                    r = results[sl.task]
                    r[0], r[1], r[2] = r[0] + 1, r[1] + int(success), r[2] + sl.steps
                    if sl.frames is not None:
                        path = out / "videos" / f"{sl.task}_ep{sl.k}_{'success' if success else 'fail'}.gif"
                        save_gif(sl.frames, path)
                        videos.append(str(path))
                    finished.append(s)
                    bar.update(1)
            finished.sort()  # the next episodes go to the lowest free slots, whatever order the workers answered in
            # (with `plan` sorted too, the batches do not depend on how slots are grouped into processes)
            for s in finished:
                del slots[s]
            if finished and pending:
                start(finished[: len(pending)])
    finally:
        bar.close()
    return {t: ClosedLoopResult(r[0], r[1], r[2] / max(r[0], 1)) for t, r in results.items()}, env_steps, videos


@torch.no_grad()
def evaluate_metaworld(policy, cfg: MetaWorldEvalConfig, out_dir: str | Path | None = None,
                       progress: bool = True) -> MetaWorldResult:
    """Roll out `policy` (a tinyvla Policy or a PolicyClient) on each task's `episodes` fixed scenes.

    With `cfg.blind`, the same episodes run again as a blind control: each receives, instead of its own
    camera image, the live image of another episode of the same task (other object and goal positions)
    whose arm is driven by the same actions, with its own robot state and instruction. The policy thus
    sees an in-distribution picture -- a real scene, its arm where the state says -- that carries no
    information about this episode's objects. A blank image would be out of distribution: the policy's
    failure on it would mix "cannot see the goal" with "confused by an input it never saw", and overstate
    how much it uses vision. Success without the right image is what state + instruction alone achieve.
    """
    cfg.validate()
    tasks = resolve_tasks(cfg.tasks)
    config = getattr(policy, "config", None)
    image_size = int(getattr(config, "image_size", 0) or getattr(policy, "image_size", 64))
    action_dim = int(getattr(config, "action_dim", 4))
    if action_dim != 4:
        raise ConfigError(f"this policy acts in {action_dim} dimensions; Meta-World's actions have 4 "
                          "(train it on a `tinyvla data metaworld` dataset)")
    state_dim = getattr(policy, "state_dim", 4)
    if state_dim not in (0, 4):
        raise ConfigError(f"this policy reads a state of size {state_dim}; Meta-World's robot state has 4")
    camera = resolve_camera(cfg, getattr(config, "camera", None), image_size)
    episodes = len(tasks) * cfg.episodes
    slots = min(cfg.episodes_at_once, episodes)
    pool = _EnvPool(min(cfg.workers, slots), slots, image_size, camera, cfg.max_steps)
    out = Path(out_dir) if out_dir else None
    try:
        t0 = time.perf_counter()
        per_task, env_steps, videos = _rollout(policy, pool, cfg, tasks, blind=False, out=out, progress=progress)
        seconds = time.perf_counter() - t0
        blind = _rollout(policy, pool, cfg, tasks, blind=True, out=None, progress=progress)[0] if cfg.blind else None
    finally:
        pool.close()
    return MetaWorldResult(per_task, seconds, env_steps, videos, camera, blind, slots, torch.get_num_threads())


def write_report(report: dict, out_dir: str | Path, title: str = "Meta-World closed-loop success") -> None:
    """results.json, results.md (per task, CI, blind control) and success.png (bars with 95% CI whiskers,
    blind-control bars beside them), then report.html."""
    out = Path(out_dir)
    rows, o = report["tasks"], report["overall"]
    blind = "blind_success" in o
    cam = report.get("camera") or {}
    lines = [f"# {title}", "", f"checkpoint: `{report.get('checkpoint', '')}`, {report.get('episodes_per_task')} "
             f"episodes per task, max {report.get('max_steps')} steps, seed {report.get('seed')}"
             + (f", camera {cam.get('camera')} at {cam.get('camera_pos') or 'its own position'}, crop "
                f"{cam.get('crop')}" if cam else ""), ""]
    if blind:
        lines += ["Blind control: the same episodes, each shown the live camera image of another scene of the same "
                  "task; vision dependence = success - blind success, in percentage points.", ""]
    lines += ["| task | difficulty | success | 95% CI | mean steps |" + (" blind | vision dep. |" if blind else ""),
              "|---|---|---|---|---|" + ("---|---|" if blind else "")]
    for task, r in rows.items():
        lo, hi = r["success_ci95"]
        lines.append(f"| {task} | {r['difficulty']} | {r['success_rate']:.0%} ({r['successes']}/{r['episodes']}) "
                     f"| {lo:.0%}-{hi:.0%} | {r['mean_episode_steps']:.0f} |"
                     + (f" {r['blind_success']:.0%} | {r['vision_dependence']:+.0f} pts |" if blind else ""))
    lines += [f"| **mean** | | **{report['mean_success_rate']:.1%}** | {o['success_ci95'][0]:.0%}-"
              f"{o['success_ci95'][1]:.0%} (all episodes) | |"
              + (f" **{o['blind_success']:.1%}** | **{o['vision_dependence']:+.1f} pts** |" if blind else ""), ""]
    lines += ["By difficulty: " + ", ".join(f"{g} {v:.1%}" for g, v in report["by_difficulty"].items()), ""]
    write_results(out, report, lines, page=False)  # the page after the plot, so that it shows it

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    x = np.arange(len(names))
    rates = np.array([rows[t]["success_rate"] for t in names])
    ci = np.array([rows[t]["success_ci95"] for t in names])
    w = 0.4 if blind else 0.8
    fig, ax = plt.subplots(figsize=(max(6, (0.6 if blind else 0.45) * len(names) + 2), 4))
    ax.bar(x - (w / 2 if blind else 0), rates * 100, w, yerr=[(rates - ci[:, 0]) * 100, (ci[:, 1] - rates) * 100],
           capsize=3, color="tab:blue", label="sighted")
    if blind:
        ax.bar(x + w / 2, [rows[t]["blind_success"] * 100 for t in names], w, color="tab:gray",
               label=f"blind control (another scene's camera), mean {o['blind_success']:.0%}")
    ax.axhline(report["mean_success_rate"] * 100, color="tab:red", ls="--", label=f"mean {report['mean_success_rate']:.0%}")
    ax.set_xticks(x, [n[:-3] for n in names], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=120)
    plt.close(fig)
    try_write_report(out)


def run_metaworld_eval(cfg: MetaWorldEvalConfig, *, checkpoint: str = "", server: str = "", token: str = "",
                       transport: str = "http", device: str = "auto", precision: str = "auto",
                       temporal_ensemble: str | None = None, temporal_ensemble_coef: float | None = None,
                       n_action_steps: int | None = None, dataset: str = "", out: str = "",
                       mode: str = "eager") -> tuple[dict, str]:
    """`tinyvla eval --env metaworld`: load the checkpoint (or connect to `server`), check it against the
    dataset it was trained on, evaluate, write the report files. Returns (report, output directory).
    `precision`, the temporal-ensemble settings and `n_action_steps` override the checkpoint's for this
    evaluation only."""
    from tinyvla.utils import resolve_device, resolve_precision

    if server:
        from tinyvla.serving.client import PolicyClient

        if mode != "eager":
            raise ConfigError("--mode applies to a local checkpoint; --server evaluates the served policy as it runs")
        if n_action_steps is not None:
            raise ConfigError("--n-action-steps applies to a local checkpoint; the server executes its policy's own")
        policy = PolicyClient(server, token=token, transport=transport)
        dev, cfg.precision, name = "server", "fp32", server
    elif checkpoint:
        from tinyvla.policies.base import Policy

        dev = resolve_device(device)
        policy = Policy.from_pretrained(checkpoint, device=dev)
        if temporal_ensemble is not None:  # try ensembling (or not) on a trained checkpoint
            policy.config.temporal_ensemble = temporal_ensemble == "on"
        if temporal_ensemble_coef is not None:
            if temporal_ensemble_coef < 0:
                raise ConfigError("--temporal-ensemble-coef must be >= 0")
            policy.config.temporal_ensemble_coef = temporal_ensemble_coef
        if n_action_steps is not None:  # execute more (open loop) or fewer (replan sooner) actions per chunk
            if not 1 <= n_action_steps <= policy.config.chunk_size:
                raise ConfigError(f"--n-action-steps {n_action_steps} is outside 1..{policy.config.chunk_size} "
                                  "(the checkpoint's chunk size)")
            policy.config.n_action_steps = n_action_steps
        cfg.precision, name = resolve_precision(precision, dev), checkpoint
        if mode != "eager":  # compile / cudagraph on a GPU; ONNX Runtime on the CPU
            from tinyvla.bench import make_runner

            policy, cfg.precision = make_runner(policy, mode, cfg.precision), "fp32"
    else:
        raise ConfigError("give --checkpoint DIR (or --server URL)")
    try:
        if dataset:  # the data the checkpoint is meant for must have been rendered the way it was trained
            from tinyvla.data.lerobot import read_camera
            from tinyvla.pipeline import check_same_camera, dataset_camera

            if not Path(dataset).is_dir():
                raise ConfigError(f"--dataset {dataset} is not a directory")
            recorded = dataset_camera(read_camera(Path(dataset)))
            check_same_camera(getattr(policy.config, "camera", None) or {}, recorded, f"--dataset {dataset}")
        out = out or (str(Path(checkpoint).parent / "eval_metaworld") if checkpoint else "runs/eval_metaworld")
        result = evaluate_metaworld(policy, cfg, out_dir=out)
    finally:
        if hasattr(policy, "close"):
            policy.close()
    config = getattr(policy, "config", None)
    report = {"env": "metaworld", "checkpoint": name, "mode": mode, "episodes_per_task": cfg.episodes, "max_steps": cfg.max_steps,
              "seed": cfg.seed, "temporal_ensemble": bool(getattr(config, "temporal_ensemble", False)),
              "n_action_steps": int(getattr(config, "n_action_steps", 1)),
              "device": str(dev), **result.to_dict()}  # to_dict's "camera": the settings rendered with
    write_report(report, out)
    return report, out


def summary_lines(report: dict, out: str) -> list[str]:
    """What `tinyvla eval --env metaworld` prints: per task, then the mean with its CI and the blind control."""
    blind = "blind_success" in report["overall"]
    lines = [f"  {task:28s} {r['success_rate']:6.1%}  ({r['successes']}/{r['episodes']})"
             + (f"  blind {r['blind_success']:6.1%}" if blind else "") for task, r in report["tasks"].items()]
    o = report["overall"]
    lines.append(f"mean success {report['mean_success_rate']:.1%} over {len(report['tasks'])} task(s) (95% CI "
                 f"{o['success_ci95'][0]:.1%}-{o['success_ci95'][1]:.1%}); {report['env_steps_per_s']:.0f} env "
                 f"steps/s; results in {out}")
    if blind:
        lines.append(f"blind control (another scene's camera): {o['blind_success']:.1%}; vision dependence "
                     f"{o['vision_dependence']:+.1f} points")
    return lines


__all__ = ["MetaWorldEvalConfig", "evaluate_metaworld", "write_report", "MetaWorldResult", "eval_seed",
           "resolve_camera", "run_metaworld_eval", "summary_lines"]
