"""`tinyvla <command>`: train, eval, serve, demo, data, bench, info, towers, distill, ablate, report.

Config overrides are dotted flags (`--policy.vision_width 384`, `--train.lr=1e-3`, `--data.num_train 5000`);
unknown keys are errors. User mistakes print one line on stderr and exit with status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from tinyvla.errors import ConfigError, TinyVLAError


def parse_overrides(extra: list[str]) -> dict[str, str]:
    """['--train.lr', '1e-3', '--policy.fusion=pool_add'] -> {'train.lr': '1e-3', 'policy.fusion': 'pool_add'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--") or "." not in arg.split("=", 1)[0]:
            raise ConfigError(f"unknown argument {arg!r} (config overrides look like --train.lr 1e-3)")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise ConfigError(f"{arg} needs a value")
            key, value = arg[2:], extra[i + 1]
            i += 2
        out[key] = value
    return out


def _write_json(path: str, obj: dict) -> None:
    """Write a result file when the user asked for one (`--json PATH`)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(obj, indent=2))


def _or(value, default):
    """A flag's per-environment default when the user did not give it (0 stays 0, to be refused)."""
    return default if value is None else value


def _policy_type(overrides: dict[str, str]) -> str:
    return overrides.pop("policy.type", "tinyvla")


def cmd_train(args, extra) -> int:
    from tinyvla.pipeline import build_run_config, run_training

    overrides = parse_overrides(extra)
    if args.init_from:
        overrides["init_from"] = args.init_from
    if args.dataset:
        overrides["data.path"] = args.dataset
    run = build_run_config(_policy_type(overrides), args.preset, overrides)
    if args.device:
        run.train.device = args.device
    if args.resume:
        run.train.resume = True
    policy, result = run_training(run, args.out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{run.policy.type} ({policy.num_parameters():,} parameters): best val L2 {result.best_val_l2:.4f}, "
          f"final {result.final_val_l2:.4f}, {result.steps} steps in {result.train_seconds:.1f} s -> {args.out}")
    return 0


def cmd_eval(args, extra) -> int:
    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}")
    token = args.token or os.environ.get("TINYVLA_SERVE_TOKEN", "")
    if args.threads < 0:
        raise ConfigError("--threads must be >= 0 (0 = torch's default)")
    if args.threads:  # the policy's torch threads (Meta-World: part of what its numbers depend on; in results.json)
        import torch

        torch.set_num_threads(args.threads)
    if args.env == "libero":
        from tinyvla.eval.libero import LiberoEvalConfig, run_libero_eval

        cfg = LiberoEvalConfig(suite=args.suite, tasks=args.task_ids, episodes=_or(args.episodes, 50),
                               init_states=args.init_states, camera=args.camera or "image",
                               max_steps=args.max_steps, blind=not args.no_blind, videos=args.videos,
                               workers=args.workers)
        report, out = run_libero_eval(cfg, checkpoint=args.checkpoint, server=args.server, token=token,
                                      transport=args.transport, device=args.device, precision=args.precision,
                                      mode=args.mode, out=args.out)
        _write_json(args.json, report)
        o = report["overall"]
        for tid, r in report["tasks"].items():
            print(f"  task {tid:>2} {r['success_rate']:6.1%}  ({r['successes']}/{r['episodes']})"
                  + (f"  blind {r['blind_success']:6.1%}" if "blind_success" in r else "") + f"  {r['instruction']}")
        print(f"{report['suite']} mean success {report['mean_success_rate']:.1%} (95% CI {o['success_ci95'][0]:.1%}-"
              f"{o['success_ci95'][1]:.1%}); {report['episodes_per_minute']:.1f} episodes/min; results in {out}"
              + (f"; blind control {o['blind_success']:.1%}, vision dependence {o['vision_dependence']:+.1f} points"
                 if "blind_success" in o else ""))
        return 0
    if args.env == "metaworld":
        from tinyvla.eval.metaworld import MetaWorldEvalConfig, run_metaworld_eval, summary_lines

        cfg = MetaWorldEvalConfig(tasks=args.tasks, episodes=_or(args.episodes, 100), seed=args.seed,
                                  max_steps=_or(args.max_steps, 500),
                                  camera=args.camera, camera_pos=args.camera_pos or None, crop=args.crop,
                                  blind=not args.no_blind, workers=args.workers, envs=args.envs,
                                  envs_per_worker=args.envs_per_worker, videos=args.videos)
        report, out = run_metaworld_eval(cfg, checkpoint=args.checkpoint, server=args.server, token=token,
                                         transport=args.transport, device=args.device, precision=args.precision,
                                         temporal_ensemble=args.temporal_ensemble,
                                         temporal_ensemble_coef=args.temporal_ensemble_coef,
                                         n_action_steps=args.n_action_steps, dataset=args.dataset, out=args.out,
                                         mode=args.mode)
        _write_json(args.json, report)
        print("\n".join(summary_lines(report, out)))
        return 0

    from tinyvla.eval.toy import evaluate_checkpoint, evaluate_server

    if args.server:
        if args.mode != "eager":
            raise ConfigError("--mode applies to a local checkpoint; --server evaluates the served policy as it runs")
        report = evaluate_server(args.server, checkpoint=args.checkpoint, episodes=_or(args.episodes, 100), seed=args.seed,
                                 token=token, transport=args.transport, out=args.out or None)
        via = f"{report['policy']} via {args.server}: "
    else:
        report = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, num_val=args.num_val,
                                     episodes=_or(args.episodes, 100), seed=args.seed, device=args.device,
                                     precision=args.precision, mode=args.mode, out=args.out or None)
        via = f"val L2 {report['val_l2']:.4f} over {report['val_frames']} frames; "
    lo, hi = report["success_ci95"]
    print(f"{via}closed-loop success {report['success_rate']:.1%} (95% CI {lo:.1%}-{hi:.1%}) "
          f"over {report['episodes']} episodes" + (f"; results in {args.out}" if args.out else ""))
    _write_json(args.json, report)
    return 0


def cmd_serve(args, extra) -> int:
    from tinyvla.serving.server import PolicyServer, ServeConfig, load_for_serving

    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}")
    cfg = ServeConfig(host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                      max_queue=args.max_queue, token=args.token or os.environ.get("TINYVLA_SERVE_TOKEN", ""),
                      max_payload_mb=args.max_payload_mb)
    cfg.validate()
    PolicyServer(load_for_serving(args.checkpoint, device=args.device, mode=args.mode, precision=args.precision,
                                  max_batch=cfg.max_batch), cfg).serve_forever()
    return 0


def _bench_serve(args) -> dict:
    from tinyvla.serving.bench import bench_serve, bench_serve_checkpoint

    if args.clients < 1 or args.requests < 1:
        raise ConfigError("--clients and --requests must be >= 1")
    token = os.environ.get("TINYVLA_SERVE_TOKEN")
    if args.url:
        return bench_serve(args.url, clients=args.clients, requests=args.requests, token=token, transport=args.transport)
    if not args.checkpoint:
        raise ConfigError("bench serve needs --checkpoint DIR (served in-process) or --url of a running server")
    return bench_serve_checkpoint(args.checkpoint, clients=args.clients, requests=args.requests, device=args.device,
                                  max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, transport=args.transport,
                                  mode="eager" if args.mode == "all" else args.mode, precision=args.precision)


def cmd_demo(args, extra) -> int:
    from tinyvla.demo import run_demo

    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}")
    run_demo(args.out, seed=args.seed, episodes=args.episodes, quick=args.quick, device=args.device)
    return 0


def cmd_data(args, extra) -> int:
    from tinyvla.data.toy import generate_toy_dataset

    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}")
    out = Path(args.out)
    if args.task == "metaworld":
        return _data_metaworld(args, out)
    if args.task == "libero":
        return _data_libero(args, out)
    generate_toy_dataset(args.num_train, args.seed, name="train").save(out / "train")
    generate_toy_dataset(args.num_val, args.seed + 1, name="val").save(out / "val")
    print(f"wrote {args.num_train} train + {args.num_val} val frames of {args.task} to {out}")
    return 0


def _data_metaworld(args, out: Path) -> int:
    from tinyvla.data.metaworld import GenerationConfig, generate_metaworld

    cfg = GenerationConfig(tasks=args.tasks, episodes_per_task=args.episodes_per_task, image_size=args.image_size,
                           camera=args.camera, camera_pos=args.camera_pos, crop=args.crop,
                           action_noise=args.action_noise, seed=args.seed, max_steps=args.max_steps,
                           workers=args.workers, video=args.video)
    report = generate_metaworld(out, cfg)
    for task, r in report["tasks"].items():
        print(f"  {task:28s} expert success {r['successes']}/{r['attempts']} ({r['expert_success_rate']:.0%}), "
              f"mean length {r['mean_length']:.0f}")
    print(f"wrote {report['episodes']} episodes, {report['frames']} frames (LeRobot v3.0) to {out} in "
          f"{report['seconds']:.1f} s ({report['env_steps_per_s']:.0f} env steps/s with rendering); expert success "
          f"{report['expert_success_rate']:.1%}")
    return 0


def _data_libero(args, out: Path) -> int:
    from tinyvla.data.libero import LiberoGenerationConfig, generate_libero

    cfg = LiberoGenerationConfig(suite=args.suite, tasks=args.task_ids, episodes_per_task=args.episodes_per_task,
                                 image_size=args.image_size, image_convention=args.image_convention,
                                 workers=args.workers)
    report = generate_libero(out, cfg)
    for task_id, r in report["tasks"].items():
        print(f"  {task_id} {r['task_name'][:60]:60s} expert success {r['successes']}/{r['attempts']}, "
              f"mean length {r['mean_length']:.0f}")
    print(f"wrote {report['episodes']} episodes, {report['frames']} frames (LeRobot v3.0) to {out} in "
          f"{report['seconds']:.1f} s ({report['env_steps_per_s']:.1f} env steps/s with two cameras); expert success "
          f"{report['expert_success_rate']:.1%}")
    return 0


def cmd_bench(args, extra) -> int:
    import torch

    from tinyvla.bench import infer_benchmark, train_benchmark

    overrides = parse_overrides(extra)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "env":
        from tinyvla.envs.metaworld import bench_env

        if overrides:
            raise ConfigError("config overrides do not apply to bench env")
        result = bench_env(args.tasks, args.steps, args.image_size)
        print(json.dumps(result, indent=2))
        _write_json(args.json, result)
        return 0
    if args.what == "serve":
        if overrides:
            raise ConfigError("config overrides do not apply to bench serve")
        result = _bench_serve(args)
        print(json.dumps(result, indent=2))
        print(f"bench serve: {result['clients']} clients x {args.requests} requests ({result['transport']}): "
              f"p50 {result['latency_ms_p50']} ms, p99 {result['latency_ms_p99']} ms, "
              f"{result['requests_per_s']} req/s, {result['errors']} errors, mean batch {result['mean_batch_size']}")
        _write_json(args.json, result)
        return 0
    if args.what == "train":
        result = train_benchmark(preset=args.preset, policy_type=_policy_type(overrides), overrides=overrides,
                                 batch_size=args.batch_size, seconds=args.seconds, device=args.device,
                                 precision=args.precision)
    else:
        result = infer_benchmark(preset=args.preset, policy_type=_policy_type(overrides), overrides=overrides,
                                 checkpoint=args.checkpoint, device=args.device, mode=args.mode, calls=args.calls,
                                 batch_size=args.batch_size or 64, tolerance=args.tolerance, precision=args.precision)
    print(json.dumps(result, indent=2))
    _write_json(args.json, result)
    return 0


def cmd_reproduce(args, extra) -> int:
    from tinyvla.reproduce import (BENCHMARKS, LIBERO_BENCHMARKS, RECIPES, ReproduceConfig, list_recipes, reproduce,
                                   reproduce_result)

    if args.list:
        print(list_recipes())
        return 0
    if not args.name:
        raise ConfigError(f"name a result to reproduce ({', '.join(RECIPES)}); --list says what each costs")
    overrides = parse_overrides(extra)
    if args.name not in BENCHMARKS and args.name not in LIBERO_BENCHMARKS:
        if overrides or args.eval_episodes is not None or args.episodes_per_task is not None:
            what = ("config overrides apply" if overrides else "--eval-episodes applies" if args.eval_episodes
                    is not None else "--episodes-per-task applies")
            raise ConfigError(f"{what} to the Meta-World and LIBERO recipes only, not to {args.name}")
        out = args.out or f"runs/reproduce_{args.name}_{args.budget}" + (f"_{args.preset}" if args.preset else "")
        r = reproduce_result(args.name, out, budget=args.budget, seeds=args.seeds, workers=args.workers,
                             device=args.device, preset=args.preset)
        print(r["table"])
        print(f"table in {out}/table.md (+ table.json)")
        return 0
    if args.preset:
        raise ConfigError(f"--preset applies to vla_gate and vla_conditions; {args.name} runs its budget's preset "
                          "(choose it with --budget)")
    policy_type = _policy_type(overrides)
    cfg = ReproduceConfig(benchmark=args.name, budget=args.budget, seeds=args.seeds, policy_type=policy_type,
                          blank_baseline=not args.no_blank, workers=args.workers, num_threads=args.threads,
                          eval_episodes=args.eval_episodes, episodes_per_task=args.episodes_per_task,
                          device=args.device, overrides=overrides)
    out = args.out or f"runs/reproduce_{args.name}_{args.budget}_{policy_type}"
    r = reproduce(cfg, out)  # LIBERO benchmarks: reproduce_libero
    s = r["success"]
    states = f", initial states {r['init_states']}" if cfg.is_libero else ""
    print(f"{args.name if cfg.is_libero else args.name.upper()} success {s['mean']:.1%} (95% CI {s['ci95'][0]:.1%}-"
          f"{s['ci95'][1]:.1%}, {len(cfg.seeds)} seed(s){states}); blind control {r['blind_success']:.1%}, vision "
          f"dependence {r['vision_dependence']:+.1f} points; report in {out}/report.md")
    return 0


def cmd_info(args, extra) -> int:
    from tinyvla.pipeline import build_run_config, new_policy, placeholder_dataset

    overrides = parse_overrides(extra)
    run = build_run_config(_policy_type(overrides), args.preset, overrides)
    policy = new_policy(run.policy, placeholder_dataset(run.policy, 16))
    print(f"policy {run.policy.type}, preset {args.preset}: {policy.num_parameters():,} parameters")
    for name, child in policy.named_children():
        print(f"  {name:<14} {sum(p.numel() for p in child.parameters()):>12,}")
    if policy.name == "vla_adapter":
        from tinyvla.policies.vla_adapter.modeling import paper_comparison

        print(paper_comparison(policy))
    return 0


def cmd_towers(args, extra) -> int:
    """The packaged pretrained towers and whether each is installed here."""
    import importlib.util

    from tinyvla.modules.towers import EXTRA, TOWERS

    for t in TOWERS.values():
        have = importlib.util.find_spec(t.module) is not None
        print(f"{t.name:<20} {t.kind:<9} {'installed' if have else 'missing':<10} {t.package:<34} {t.description}")
    print(f"use: --policy.vision_tower NAME / --policy.language_tower NAME (or a local Hugging Face directory); "
          f"install: {EXTRA}")
    return 0


def cmd_distill(args, extra) -> int:
    from tinyvla.distill import distill
    from tinyvla.pipeline import build_run_config

    overrides = parse_overrides(extra)
    student = build_run_config(_policy_type(overrides), args.student_preset, overrides)
    report = distill(args.teacher, student, args.out, alpha=args.alpha)
    print(f"teacher ({report['teacher_params']:,} params) val L2 {report['teacher_val_l2']:.4f}; student "
          f"({report['student_params']:,} params) {report['student_val_l2']:.4f}; gap {report['gap']:+.4f} -> {args.out}")
    return 0


def cmd_ablate(args, extra) -> int:
    from tinyvla.ablate import GridEnv, ablation_markdown, run_ablation

    env = GridEnv(env=args.env, dataset=args.dataset, init_states=args.init_states, tasks=args.task_ids,
                  eval_workers=args.eval_workers, max_steps=args.max_steps)
    episodes = args.episodes if args.episodes is not None else (10 if args.env == "libero" else 100)
    results = run_ablation(args.grid, args.seeds, args.out, episodes=episodes, device=args.device,
                           workers=args.workers, extra=parse_overrides(extra), preset=args.preset,
                           row_numbers=args.rows, env=env)
    print(ablation_markdown(results))
    return 0


def cmd_report(args, extra) -> int:
    from tinyvla.report import write_report

    if extra:
        raise ConfigError(f"unknown argument(s) {' '.join(extra)}")
    print(f"wrote {write_report(args.run_dir, args.out or None)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyvla", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a policy (config overrides: --policy.X, --train.X, --data.X)")
    t.add_argument("--preset", default="tiny")
    t.add_argument("--out", default="runs/train")
    t.add_argument("--device", default=None, help="shortcut for --train.device")
    t.add_argument("--resume", action="store_true", help="continue from <out>/last after a crash (same config)")
    t.add_argument("--init-from", default="", help="fine-tune this checkpoint (e.g. with --lora.rank 8)")
    t.add_argument("--dataset", default="", help="train on this dataset directory (LeRobot format or `tinyvla data "
                   "toy`); shortcut for --data.path")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="offline L2 + closed-loop success of a checkpoint")
    e.add_argument("--checkpoint", default="")
    e.add_argument("--server", default="", help="evaluate a policy served by `tinyvla serve` at this URL")
    e.add_argument("--token", default="", help="bearer token for --server (or env TINYVLA_SERVE_TOKEN)")
    e.add_argument("--transport", default="http", choices=["http", "ws"], help="--server: JSON over HTTP or msgpack over WebSocket")
    e.add_argument("--episodes", type=int, default=None, help="toy: episodes (default 100); metaworld: per task "
                   "(default 100); libero: initial states per task, the first N of 50 (default 50)")
    e.add_argument("--dataset", default="", help="toy: a saved split (default: the toy task's held-out split); "
                   "metaworld: a dataset whose recorded camera must be the checkpoint's")
    e.add_argument("--num-val", type=int, default=2000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    e.add_argument("--mode", default="eager", choices=["eager", "onnx", "onnx-int8", "compile", "cudagraph"],
                   help="run the network in PyTorch (eager), ONNX Runtime on the CPU (fp32 / dynamic int8) or "
                   "compiled / CUDA-graph-captured on a GPU")
    e.add_argument("--json", default="")
    e.add_argument("--env", default="toy", choices=["toy", "metaworld", "libero"], help="closed-loop environment")
    e.add_argument("--suite", default="object", help="libero: spatial | object | goal | 10")
    e.add_argument("--task-ids", default="all", help="libero: task ids of the suite, 'all' or e.g. 0,3")
    e.add_argument("--init-states", default="", help="libero: initial states per task instead of the first "
                   "--episodes, 'A-B' or 'i,j,k' (e.g. 25-49: those a 25-demo dataset did not use)")
    e.add_argument("--tasks", default="mt10", help="metaworld: mt10 | mt50 | easy | medium | hard | very_hard | "
                   "task names, comma-separated")
    e.add_argument("--max-steps", type=int, default=None, help="steps before an episode counts as failed (metaworld: "
                   "500; libero: the suite's 220 / 280 / 300 / 520)")
    e.add_argument("--camera", default="", help="metaworld: corner | corner2 | ... (default: the checkpoint's, else "
                   "corner2; another than the checkpoint's is an error)")
    e.add_argument("--camera-pos", default="", help="metaworld: close | closer | X,Y,Z (default: the checkpoint's)")
    e.add_argument("--crop", type=float, default=None, help="metaworld: centre fraction kept (default: the "
                   "checkpoint's, else 1.0)")
    e.add_argument("--temporal-ensemble", choices=["on", "off"], default=None, help="metaworld: plan every step and "
                   "average the overlapping chunks (default: as the checkpoint was trained)")
    e.add_argument("--temporal-ensemble-coef", type=float, default=None, help="metaworld: weights exp(-coef * i), "
                   "oldest prediction first (default: the checkpoint's, 0.01)")
    e.add_argument("--n-action-steps", type=int, default=None, help="metaworld: actions executed from each predicted "
                   "chunk before planning again, 1..chunk size (default: the checkpoint's)")
    e.add_argument("--no-blind", action="store_true", help="metaworld: skip the blind control (the same episodes "
                   "seen through another scene's camera)")
    e.add_argument("--workers", type=int, default=2, help="metaworld: env processes (one per core); "
                   "libero: tasks evaluated at once")
    e.add_argument("--envs", type=int, default=16, help="metaworld: episodes run at once, their chunks planned in one "
                   "batch; results depend on it (and on --threads), not on --workers")
    e.add_argument("--envs-per-worker", type=int, default=None, help="metaworld: older spelling, --envs = --workers "
                   "x this")
    e.add_argument("--threads", type=int, default=0, help="torch threads of the policy (0 = torch's default)")
    e.add_argument("--videos", type=int, default=1, help="metaworld: episodes per task saved as GIF")
    e.add_argument("--out", default="", help="directory for results.json/.md (metaworld: also success.png, videos/; "
                   "default there: <checkpoint>/../eval_metaworld)")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("demo", help="the toy task end to end: TinyVLA + baselines, table and plot")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--episodes", type=int, default=100)
    d.add_argument("--device", default="auto")
    d.add_argument("--quick", action="store_true", help="tiny smoke run of the same pipeline")
    d.set_defaults(func=cmd_demo)

    g = sub.add_parser("data", help="generate a data set")
    g.add_argument("task", choices=["toy", "metaworld", "libero"])
    g.add_argument("--suite", default="object", help="libero: spatial | object | goal | 10 (experts so far: object)")
    g.add_argument("--task-ids", default="all", help="libero: task ids of the suite, 'all' or e.g. 0,3")
    g.add_argument("--image-convention", default="upright", choices=["upright", "lerobot"],
                   help="libero: 'lerobot' mirrors frames left-right as LeRobot's/OpenVLA's LIBERO datasets do")
    g.add_argument("--out", required=True)
    g.add_argument("--num-train", type=int, default=50_000, help="toy: training frames")
    g.add_argument("--num-val", type=int, default=2_000, help="toy: held-out frames")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tasks", default="mt10", help="metaworld: mt10 | mt50 | easy | medium | hard | very_hard | "
                   "task names, comma-separated")
    g.add_argument("--episodes-per-task", type=int, default=50, help="metaworld: successful demos kept per task")
    g.add_argument("--image-size", type=int, default=64, help="metaworld: camera image size (square)")
    g.add_argument("--camera", default="corner2", help="metaworld: corner | corner2 | corner3 | topview | ...")
    g.add_argument("--camera-pos", default="", help="metaworld: move the camera: close | closer | X,Y,Z (metres; "
                   "close = LeRobot's corner2 at 0.75,0.075,0.7, closer = DP3's at 0.6,0.295,0.8)")
    g.add_argument("--crop", type=float, default=1.0, help="metaworld: keep this centre fraction of a frame rendered "
                   "at image-size / crop (e.g. 0.667)")
    g.add_argument("--action-noise", type=float, default=0.0, help="metaworld: execute expert action + N(0, "
                   "sigma^2), record the clean action (DART-style recoveries; e.g. 0.1)")
    g.add_argument("--max-steps", type=int, default=500, help="metaworld: an expert episode's step limit")
    g.add_argument("--workers", type=int, default=2, help="metaworld: rollout processes")
    g.add_argument("--video", action="store_true", help="metaworld: store the camera as AV1 video (needs PyAV) "
                   "instead of PNG frames")
    g.set_defaults(func=cmd_data)

    b = sub.add_parser("bench", help="speed/memory benchmarks, written as JSON")
    b.add_argument("what", choices=["train", "infer", "serve", "env"])
    b.add_argument("--tasks", default="mt10", help="env: Meta-World tasks to step")
    b.add_argument("--steps", type=int, default=300, help="env: steps per task and mode")
    b.add_argument("--image-size", type=int, default=64, help="env: camera image size")
    b.add_argument("--preset", default="tiny")
    b.add_argument("--checkpoint", default="", help="infer: time a trained checkpoint instead of a preset")
    b.add_argument("--seconds", type=float, default=30.0, help="train: how long to train")
    b.add_argument("--batch-size", type=int, default=0,
                   help="train: default the preset's train.batch_size; infer: the throughput batch (default 64)")
    b.add_argument("--mode", default="all", help="infer: all (what this device runs) or a comma list of eager, onnx, "
                   "onnx-int8 (CPU), compile, cudagraph (GPU)")
    b.add_argument("--calls", type=int, default=200, help="infer: batch-1 calls timed")
    b.add_argument("--tolerance", type=float, default=1e-2,
                   help="infer: the fastest mode within this max |action - eager action| becomes the headline")
    b.add_argument("--device", default="auto")
    b.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="train: autocast; infer: compile / cudagraph modes (eager stays the fp32 reference)")
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--json", default="")
    b.add_argument("--clients", type=int, default=8, help="serve: concurrent clients")
    b.add_argument("--requests", type=int, default=50, help="serve: requests per client")
    b.add_argument("--url", default="", help="serve: bench a running server instead of serving --checkpoint in-process")
    b.add_argument("--transport", default="http", choices=["http", "ws"], help="serve: JSON/HTTP or msgpack/WebSocket")
    b.add_argument("--max-batch", type=int, default=32, help="serve: the in-process server's max batch")
    b.add_argument("--max-wait-ms", type=float, default=5.0, help="serve: the in-process server's batching wait")
    b.set_defaults(func=cmd_bench)

    v = sub.add_parser("serve", help="serve a checkpoint over HTTP (JSON) and WebSocket (msgpack)")
    v.add_argument("checkpoint")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--device", default="auto")
    v.add_argument("--max-batch", type=int, default=32, help="requests batched into one forward pass")
    v.add_argument("--max-wait-ms", type=float, default=5.0, help="how long the first request waits for others")
    v.add_argument("--max-queue", type=int, default=256, help="queued requests before answering 503")
    v.add_argument("--token", default="", help="require 'Authorization: Bearer TOKEN' (or env TINYVLA_SERVE_TOKEN)")
    v.add_argument("--max-payload-mb", type=float, default=8.0)
    v.add_argument("--mode", default="eager", choices=["eager", "onnx", "onnx-int8", "compile", "cudagraph"],
                   help="the network in PyTorch (eager), ONNX Runtime (CPU) or compiled / CUDA-graph-captured (GPU; "
                   "batches padded to buckets 1, 2, 4, ... up to --max-batch)")
    v.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"], help="compile / cudagraph: "
                   "bf16 autocast where the GPU supports it (auto)")
    v.set_defaults(func=cmd_serve)

    k = sub.add_parser("distill", help="train a student on a teacher's actions (optionally mixed with ground truth)")
    k.add_argument("--teacher", required=True, help="teacher checkpoint directory")
    k.add_argument("--student-preset", default="tiny")
    k.add_argument("--alpha", type=float, default=1.0, help="weight of the teacher's actions (1 = teacher only)")
    k.add_argument("--out", default="runs/distill")
    k.set_defaults(func=cmd_distill)

    a = sub.add_parser("ablate", help="a grid of configurations x seeds on the toy task or a LIBERO dataset: "
                       "table + plot")
    a.add_argument("--grid", default="fusion_head")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--out", default="runs/ablate")
    a.add_argument("--episodes", type=int, default=None, help="toy: closed-loop episodes per run (default 100); "
                   "libero: held-out initial states per task (default 10)")
    a.add_argument("--env", default="toy", help="toy (default) | libero: train on --dataset, score on its suite")
    a.add_argument("--dataset", default="", help="libero: a `tinyvla data libero` folder")
    a.add_argument("--init-states", default="", help="libero: e.g. 25-34 (default: --episodes states after the demos')")
    a.add_argument("--task-ids", default="all", help="libero: task ids of the suite, 'all' or e.g. 0,3")
    a.add_argument("--eval-workers", type=int, default=2, help="libero: LIBERO processes while scoring")
    a.add_argument("--max-steps", type=int, default=None, help="libero: episode step limit (default: the suite's)")
    a.add_argument("--device", default="auto")
    a.add_argument("--workers", type=int, default=1, help="parallel runs (one process each)")
    a.add_argument("--preset", default="tiny", help="the preset every row starts from (e.g. pretrained)")
    a.add_argument("--rows", type=int, nargs="+", default=None, help="run only these rows (1-based)")
    a.set_defaults(func=cmd_ablate)

    r = sub.add_parser("reproduce", help="a table of the docs from nothing, in one command (--list: which, and "
                       "their cost); resumable")
    r.add_argument("name", nargs="?", default="", help="toy | fusion_head | vla_gate | vla_conditions | towers | "
                   "speed | serve | mt10 | mt50 | libero_object | libero_spatial | libero_goal | libero_10")
    r.add_argument("--list", action="store_true", help="list the results and what each costs on a 2-core CPU")
    r.add_argument("--budget", default="cpu", help="cpu (what the docs ran) | cpu_pretrained (mt10/mt50: frozen packaged towers) | cpu_small (mt10/mt50: frozen EfficientNet-Lite0, 7.7M parameters) | gpu | smoke (seconds, to check an install); libero_*: cpu | gpu | smoke")
    r.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the docs' seeds for that result")
    r.add_argument("--out", default="", help="output folder (default runs/reproduce_<name>_<budget>[_<policy>])")
    r.add_argument("--workers", type=int, default=2, help="env processes for generation and evaluation")
    r.add_argument("--threads", type=int, default=0, help="torch threads for training (0 = torch's default)")
    r.add_argument("--device", default="", help="override the budget's device (cpu, cuda)")
    r.add_argument("--no-blank", action="store_true", help="skip the baseline trained on blank images")
    r.add_argument("--preset", default="", help="vla_gate / vla_conditions: 'pretrained' runs the grid on the "
                   "MiniLM-L6 backbone (needs pip install 'tinyvla[pretrained]'); default: the scratch grid")
    r.add_argument("--eval-episodes", type=int, default=None, help="mt10/mt50: evaluation episodes per task; libero_*: "
                   "initial states per task (default: the budget's; another count evaluates into eval_<n>ep/)")
    r.add_argument("--episodes-per-task", type=int, default=None, help="mt10/mt50/libero_*: demonstrations generated "
                   "per task (default: the budget's; docs/metaworld.md ran mt50 with 50)")
    r.set_defaults(func=cmd_reproduce)

    h = sub.add_parser("report", help="one self-contained report.html for a run directory (train, eval, ablate, "
                       "reproduce, or a folder of several)")
    h.add_argument("run_dir")
    h.add_argument("--out", default="", help="where to write the page (default RUN_DIR/report.html)")
    h.set_defaults(func=cmd_report)

    w = sub.add_parser("towers", help="the pretrained towers that ship in pip packages (offline), and which are installed")
    w.set_defaults(func=cmd_towers)

    i = sub.add_parser("info", help="parameter counts of a preset")
    i.add_argument("--preset", default="tiny")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    warnings.simplefilter("default")
    try:
        return args.func(args, extra)
    except TinyVLAError as e:
        print(f"tinyvla {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
