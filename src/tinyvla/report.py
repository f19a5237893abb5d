"""`tinyvla report RUN_DIR`: one self-contained report.html for a run directory.

The page is built from whatever result files the directory holds -- a training run (run_config.json,
history.json, best/ and last/ checkpoints), an evaluation (toy or Meta-World results.json, rollout GIFs),
an ablation grid (ablation.json), a reproduction (report.json), `tinyvla demo` or `bench --json` output --
or from a directory holding several of them. Files are recognised by their keys, not their names, so
`tinyvla eval --json anything.json` is found too; each section appears only when its data exists.
Plots are inline PNG, rollouts inline GIF/video data URIs (shrunk or left out past a size cap); there is
no script and no external URL, so the file opens offline and can be archived or mailed as it is.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from tinyvla.constants import TRAIN_STATE_NAME, WEIGHTS_NAME
from tinyvla.errors import ConfigError

REPORT_NAME = "report.html"
MEDIA_CAP_BYTES = 1_500_000  # one rollout, after shrinking
MEDIA_TOTAL_BYTES = 24_000_000  # all rollouts of one page
MAX_ROLLOUTS_PER_EVAL = 12
GIF_MAX_SIDE, GIF_MAX_FRAMES = 128, 100
MAX_JSON_BYTES = 20_000_000
MAX_DEPTH = 4
SKIP_DIRS = {"best", "last", "videos", "tb"}  # read as parts of their run, not as runs of their own

# kind -> keys a JSON object must hold; the first kind that matches wins
KINDS: dict[str, set[str]] = {
    "table": {"recipe", "command", "made"},  # `tinyvla reproduce NAME`: table.json beside its table.md
    "run_config": {"policy_type", "policy", "train"},
    "history": {"history", "best_val_l2"},
    "reproduce": {"benchmark", "success", "runs"},
    "ablation": {"grid", "rows", "runs"},
    "demo": {"rows", "seed_figures"},
    "metaworld_eval": {"tasks", "overall", "mean_success_rate"},
    "toy_eval": {"success_rate", "success_ci95", "episodes"},
    "bench_train": {"samples_per_s", "mfu"},
    "bench_infer": {"modes", "latency_ms_p50"},
    "checkpoint": {"type", "format_version", "config"},
}


@dataclass
class Unit:
    """One directory's result files, by kind: {kind: [(path, parsed JSON), ...]}."""
    path: Path
    files: dict[str, list[tuple[Path, dict]]] = field(default_factory=dict)

    def first(self, kind: str) -> dict | None:
        return self.files[kind][0][1] if kind in self.files else None


def classify(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return None
    return next((kind for kind, keys in KINDS.items() if keys <= obj.keys()), None)


def discover(root: str | Path, max_depth: int = MAX_DEPTH) -> list[Unit]:
    """Every directory under `root` (itself included) holding a recognised result file, in path order."""
    units = []

    def visit(d: Path, depth: int) -> None:
        unit = Unit(d)
        for f in sorted(d.glob("*.json")):
            if f.name == REPORT_NAME or not f.is_file() or f.stat().st_size > MAX_JSON_BYTES:
                continue
            try:
                obj = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            kind = classify(obj)
            if kind:
                unit.files.setdefault(kind, []).append((f, obj))
        if "history" not in unit.files:  # a run still training (or killed): its history is in last/
            state = _read_json(d / "last" / TRAIN_STATE_NAME)
            if state and "history" in state:
                unit.files["history"] = [(d / "last" / TRAIN_STATE_NAME, state)]
        if unit.files:
            units.append(unit)
        if depth < max_depth:
            for child in sorted(p for p in d.iterdir() if p.is_dir()):
                if child.name in SKIP_DIRS or child.name.startswith(".") or (child / "meta" / "info.json").is_file():
                    continue  # checkpoints, rollouts, TensorBoard logs, LeRobot data sets
                visit(child, depth + 1)

    visit(Path(root), 0)
    return units


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---- formatting ------------------------------------------------------------------------------------
def _e(x: object) -> str:
    return html.escape(str(x))


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _ci(ci: list | None) -> str:
    return "-" if not ci else f"{_pct(ci[0])} - {_pct(ci[1])}"


def _num(x: object, digits: int = 4) -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    a = abs(x)
    if a >= 1e5 or 0 < a < 1e-3:
        return f"{x:.3g}"
    return f"{x:,.1f}" if a >= 100 else f"{x:.2f}" if a >= 1 else f"{x:.{digits}f}"


def _table(header: list[str] | None, rows: list[list[object]]) -> str:
    head = "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _e(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _kv(pairs: list[tuple[str, object]]) -> str:
    return _table(None, [[_Raw(f"<b>{_e(k)}</b>"), v] for k, v in pairs if v is not None])


def _details(summary: str, obj: object) -> str:
    return f"<details><summary>{_e(summary)}</summary><pre>{_e(json.dumps(obj, indent=2))}</pre></details>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _figure(ncols: int = 1, width: float = 6.0, height: float = 3.6):
    from matplotlib.figure import Figure  # no pyplot: no global backend state, safe inside a training run

    fig = Figure(figsize=(width * ncols, height), layout="tight")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


# ---- rollouts ----------------------------------------------------------------------------------------
class _MediaBudget:
    """Inlines rollout GIFs/videos as data URIs until `total` bytes are spent; a GIF over `cap` is shrunk
    (frames subsampled, at most GIF_MAX_SIDE px), a video over `cap` is left out with a note."""

    def __init__(self, cap: int = MEDIA_CAP_BYTES, total: int = MEDIA_TOTAL_BYTES):
        self.cap, self.left = cap, total

    def html(self, path: Path) -> str:
        label = _e(path.stem)
        css = "ok" if "success" in path.stem else "fail" if "fail" in path.stem else ""
        spent = f'<figure class="note">{label}: not inlined (the page\'s media budget is spent)</figure>'
        if self.left <= 0:
            return spent
        try:
            data = path.read_bytes() if path.stat().st_size <= self.cap else None
            if data is None and path.suffix.lower() == ".gif":
                data = shrink_gif(path, self.cap)
        except OSError as e:
            return f'<figure class="note">{label}: unreadable ({_e(e)})</figure>'
        if data is None:
            size = path.stat().st_size / 1e6
            return f'<figure class="note">{label}: {size:.1f} MB, too large to inline ({_e(path)})</figure>'
        if len(data) > self.left:
            return spent
        self.left -= len(data)
        uri = f"data:{_MIME[path.suffix.lower()]};base64,{base64.b64encode(data).decode()}"
        tag = (f'<img class="rollout" alt="{label}" src="{uri}">' if path.suffix.lower() == ".gif"
               else f'<video class="rollout" controls loop muted src="{uri}"></video>')
        return f'<figure>{tag}<figcaption class="{css}">{label}</figcaption></figure>'


_MIME = {".gif": "image/gif", ".mp4": "video/mp4", ".webm": "video/webm"}


def shrink_gif(path: Path, cap: int) -> bytes | None:
    """A smaller GIF of the same rollout (every k-th frame, at most GIF_MAX_SIDE px), or None if none fits."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        n, duration = getattr(im, "n_frames", 1), int(im.info.get("duration", 40) or 40)
        scale = min(1.0, GIF_MAX_SIDE / max(im.size))
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        # NEAREST keeps palette frames in palette mode (no re-quantising) and undoes our x4 pixel upscaling
        frames = [f.copy().resize(size, Image.NEAREST) for f in ImageSequence.Iterator(im)]
    stride = max(1, math.ceil(n / GIF_MAX_FRAMES))
    while stride <= n:
        kept = frames[::stride]
        buf = io.BytesIO()
        kept[0].save(buf, format="GIF", save_all=True, append_images=kept[1:], duration=duration * stride, loop=0)
        if buf.tell() <= cap:
            return buf.getvalue()
        stride *= 2
    return None


def _rollouts(unit: Unit, report: dict, media: _MediaBudget) -> str:
    paths: dict[str, Path] = {}
    for v in report.get("videos", []):  # recorded as given to the evaluation; the folder may have moved since
        p = Path(v)
        for cand in ([p] if p.is_absolute() else []) + [unit.path / "videos" / p.name, unit.path / p.name]:
            if cand.is_file():
                paths[cand.name] = cand
                break
    for p in sorted((unit.path / "videos").glob("*")) if (unit.path / "videos").is_dir() else []:
        if p.suffix.lower() in _MIME:
            paths.setdefault(p.name, p)
    if not paths:
        return ""
    shown = sorted(paths.values())[:MAX_ROLLOUTS_PER_EVAL]
    more = len(paths) - len(shown)
    note = f"<p>{more} more rollout(s) in {_e(unit.path / 'videos')}</p>" if more > 0 else ""
    return "<h3>Rollouts</h3><div class=\"media\">" + "".join(media.html(p) for p in shown) + "</div>" + note


# ---- sections ----------------------------------------------------------------------------------------
def parameter_counts(checkpoint: Path) -> dict[str, int]:
    """{top-level module: parameters} read from a checkpoint's safetensors header (no weights loaded)."""
    from safetensors import safe_open

    counts: dict[str, int] = {}
    with safe_open(str(checkpoint / WEIGHTS_NAME), framework="pt") as f:
        for name in f.keys():
            counts[name.split(".")[0]] = counts.get(name.split(".")[0], 0) + math.prod(f.get_slice(name).get_shape())
    return counts


def _params_html(unit: Unit) -> str:
    ckpt = next((unit.path / d for d in ("best", "last", ".") if (unit.path / d / WEIGHTS_NAME).is_file()), None)
    if ckpt is None:
        return ""
    counts = parameter_counts(ckpt)
    rows = [[k, f"{v:,}"] for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return _card(f"Parameters ({ckpt.name if ckpt.name != '.' else 'checkpoint'}/)",
                 _table(["module", "parameters"], rows + [[_Raw("<b>total</b>"), f"{sum(counts.values()):,}"]]))


def _card(title: str, body: str) -> str:
    return f'<div class="card"><h3>{_e(title)}</h3>{body}</div>' if body else ""


def _train_section(unit: Unit) -> str:
    cfg, hist = unit.first("run_config"), unit.first("history")
    records = hist["history"] if hist else []
    cards, after = [], []
    if cfg:
        t, d = cfg.get("train", {}), cfg.get("data", {})
        cards.append(_card("Configuration", _kv([
            ("policy", cfg.get("policy_type")), ("data", d.get("path") or "toy task (generated)"),
            ("steps x batch", f"{t.get('steps')} x {t.get('batch_size')}"), ("lr", t.get("lr")),
            ("seed", t.get("seed")), ("device / precision", f"{t.get('device')} / {t.get('precision')}"),
            ("init from", cfg.get("init_from") or None), ("LoRA rank", cfg.get("lora", {}).get("rank") or None)])))
        after.append(_details("full run_config.json", cfg))
    cards.append(_params_html(unit))
    if hist:
        last = records[-1] if records else {}
        steps = hist.get("steps", last.get("step"))
        secs = hist.get("train_seconds", last.get("train_seconds"))
        samples = hist.get("samples", last.get("samples"))
        done = unit.files["history"][0][0].name != TRAIN_STATE_NAME
        cards.append(_card("Validation", _kv([
            ("status", "finished" if done else "in progress or interrupted (from last/)"),
            ("best val L2", _num(hist.get("best_val_l2"))),
            ("final val L2", _num(hist.get("final_val_l2", last.get("val_l2")))),
            ("final train loss", _num(last.get("loss")) if last else None)])))
        if secs:
            cards.append(_card("Speed", _kv([
                ("training time", f"{secs:,.1f} s ({steps} steps)"),
                ("steps / s", _num(steps / secs) if steps else None),
                ("samples / s", _num(samples / secs) if samples else None)])))
    out = [f'<div class="cards">{"".join(cards)}</div>', *after]
    if records:
        out.append("<h3>Training curves</h3>" + _curves(records))
    diag = [r for r in records if r.get("diagnostics")]
    if diag:
        out.append("<h3>Gates and attention (VLA-Adapter bridge)</h3>" + _diagnostics(diag))
    return "".join(out)


def _curves(records: list[dict]) -> str:
    fig, (a, b) = _figure(2, 5)
    steps = [r["step"] for r in records]
    a.plot(steps, [r["loss"] for r in records], marker="o", ms=3)
    a.set(xlabel="step", ylabel="train loss (last batch)", title="training loss")
    b.plot(steps, [r["val_l2"] for r in records], marker="o", ms=3, color="tab:orange")
    b.set(xlabel="step", ylabel="val L2 (mean action error)", title="validation L2")
    val = [r["val_l2"] for r in records]
    if min(val) > 0 and max(val) / min(val) > 10:  # log ticks only where they span a decade
        b.set_yscale("log")
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    return _png(fig)


def _diagnostics(records: list[dict]) -> str:
    """Keys are `block{i}/tanh_g_{source}` and `block{i}/mass_{source}` (see VLAAdapterPolicy.diagnostics)."""
    last = records[-1]["diagnostics"]
    gates = sorted({k for k in last if "/tanh_g_" in k})
    masses = sorted({k for k in last if "/mass_" in k})
    fig, (a, b) = _figure(2, 5)
    steps = [r["step"] for r in records]
    for k in gates:
        a.plot(steps, [r["diagnostics"].get(k, float("nan")) for r in records], marker="o", ms=3, label=k)
    a.set(xlabel="step", ylabel="tanh(g)", title="bridge gates")
    blocks = sorted({k.split("/")[0] for k in masses}, key=lambda s: int(s[5:]) if s[5:].isdigit() else s)
    sources = sorted({k.split("/mass_")[1] for k in masses})
    bottom = [0.0] * len(blocks)
    for s in sources:
        vals = [last.get(f"{blk}/mass_{s}", 0.0) for blk in blocks]
        b.bar(blocks, vals, bottom=bottom, label=s)
        bottom = [x + v for x, v in zip(bottom, vals)]
    b.set(ylabel="share of attention", title=f"attention per source (step {records[-1]['step']})")
    for ax in (a, b):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    rows = [[k, _num(v)] for k, v in sorted(last.items())]
    return _png(fig) + _details(f"values at step {records[-1]['step']}", dict(rows))


def _metaworld_section(unit: Unit, r: dict, media: _MediaBudget) -> str:
    o, rows = r["overall"], r["tasks"]
    blind = "blind_success" in o
    cam = r.get("camera") or {}
    summary = _kv([("checkpoint", r.get("checkpoint")), ("mean success over tasks", _pct(r["mean_success_rate"])),
                   ("all episodes", f"{o['successes']}/{o['episodes']}, 95% CI {_ci(o['success_ci95'])}"),
                   ("blind control", _pct(o.get("blind_success")) if blind else None),
                   ("vision dependence", f"{o['vision_dependence']:+.1f} points" if blind else None),
                   ("episodes per task / max steps", f"{r.get('episodes_per_task')} / {r.get('max_steps')}"),
                   ("camera", (", ".join(f"{k} {v}" for k, v in cam.items()) if isinstance(cam, dict) else cam)
                    or None),
                   ("by difficulty", ", ".join(f"{g} {_pct(v)}" for g, v in r.get("by_difficulty", {}).items()))])
    speed = _kv([("sighted pass", f"{r['seconds']:,.1f} s, {r.get('env_steps', 0):,} env steps"),
                 ("env steps / s", _num(r.get("env_steps_per_s"))), ("device", r.get("device"))]
                ) if r.get("seconds") else ""
    out = [f'<div class="cards">{_card("Summary", summary)}{_card("Speed", speed)}</div>']
    if blind:
        out.append("<p class=\"hint\">Blind control: the same episodes, each shown the live camera image of another "
                   "scene of the same task; vision dependence = success - blind success.</p>")
    header = ["task", "difficulty", "success", "95% CI", "mean steps"] + (["blind", "vision dep."] if blind else [])
    out.append(_table(header, [[t, x.get("difficulty", ""), f"{_pct(x['success_rate'], 0)} ({x['successes']}/"
                                f"{x['episodes']})", _ci(x["success_ci95"]), f"{x['mean_episode_steps']:.0f}"]
                               + ([_pct(x["blind_success"], 0), f"{x['vision_dependence']:+.0f}"] if blind else [])
                               for t, x in rows.items()]))
    out.append(_success_plot(rows, r["mean_success_rate"]))
    out.append(_rollouts(unit, r, media))
    return "".join(out)


def _success_plot(rows: dict, mean: float) -> str:
    names = list(rows)
    blind = all("blind_success" in rows[t] for t in names)
    fig, (ax,) = _figure(1, max(6.0, 0.5 * len(names) + 2), 3.8)
    w = 0.4 if blind else 0.8
    x = list(range(len(names)))
    rate = [rows[t]["success_rate"] * 100 for t in names]
    err = [[r - rows[t]["success_ci95"][0] * 100 for r, t in zip(rate, names)],
           [rows[t]["success_ci95"][1] * 100 - r for r, t in zip(rate, names)]]
    ax.bar([i - (w / 2 if blind else 0) for i in x], rate, w, yerr=err, capsize=3, label="sighted (95% CI)")
    if blind:
        ax.bar([i + w / 2 for i in x], [rows[t]["blind_success"] * 100 for t in names], w, color="tab:gray",
               label="blind control")
    ax.axhline(mean * 100, color="tab:red", ls="--", label=f"mean {mean:.0%}")
    ax.set_xticks(x, [n.removesuffix("-v3") for n in names], rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="success rate (%)", ylim=(0, 105))
    ax.legend(fontsize=8)
    return _png(fig)


def _toy_section(r: dict) -> str:
    return _kv([("policy", r.get("policy")), ("checkpoint", r.get("checkpoint") or r.get("server")),
                ("val L2", _num(r["val_l2"]) if r.get("val_l2") is not None else None),
                ("closed-loop success", f"{_pct(r['success_rate'])} over {r['episodes']} episodes, 95% CI "
                                        f"{_ci(r['success_ci95'])}"),
                ("mean episode steps", _num(r.get("mean_episode_steps"), 3)),
                ("mode / device", f"{r.get('mode', 'eager')} / {r.get('device', r.get('transport', '-'))}")])


def _ablation_section(r: dict) -> str:
    rows = r["rows"]

    def pm(row: dict, key: str, fmt) -> str:
        if key not in row:
            return "-"
        std = row.get(f"{key}_std")
        return fmt(row[key]) + (f" ± {fmt(std)}" if std is not None else "")

    table = _table(["config", "val L2", "closed-loop success", "train s", "params", "mean |tanh g| raw / AQ",
                    "raw share"],
                   [[x["config"], pm(x, "val_l2", lambda v: f"{v:.4f}"), pm(x, "success_rate", lambda v: _pct(v, 0)),
                     pm(x, "train_seconds", lambda v: f"{v:.0f}"), _num(x.get("params")),
                     f"{_num(x.get('tanh_g_raw'), 3)} / {_num(x.get('tanh_g_aq'), 3)}", _num(x.get("mass_raw"), 3)]
                    for x in rows])
    fig, (a, b) = _figure(2, 5, max(3.0, 0.35 * len(rows) + 1.5))
    labels = [x["config"] for x in rows]
    y = list(range(len(rows)))
    a.barh(y, [x.get("success_rate", 0) * 100 for x in rows], xerr=[x.get("success_rate_std", 0) * 100 for x in rows],
           capsize=3)
    a.set(xlabel="closed-loop success (%)", xlim=(0, 105))
    b.barh(y, [x.get("val_l2", 0) for x in rows], xerr=[x.get("val_l2_std", 0) for x in rows], capsize=3,
           color="tab:orange")
    b.set(xlabel="val L2")
    for ax in (a, b):
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
    seeds = sorted({s for x in rows for s in x.get("seeds", [])})
    head = (f"<p>Grid <code>{_e(r['grid'])}</code> ({_e(r.get('policy', ''))}, preset {_e(r.get('preset', ''))}) "
            f"on {_e(r.get('task', ''))}: mean ± std over seeds {_e(seeds)}, {_e(r.get('episodes'))} episodes "
            "each.</p>")
    return head + table + _png(fig)


def _reproduce_section(r: dict) -> str:
    s = r["success"]
    head = [["sighted", _Raw(f"<b>{_pct(s['mean'])}</b>"), _ci(s["ci95"]), ", ".join(_pct(x) for x in s["per_seed"])],
            ["blind control", _pct(r.get("blind_success")), "", ""]]
    if "blank_trained" in r:
        b = r["blank_trained"]
        head.append(["trained on blank images", _pct(b["mean"]), _ci(b["ci95"]),
                     ", ".join(_pct(x) for x in b["per_seed"])])
    out = [f"<p>{_e(r['benchmark'].upper())}, budget <code>{_e(r['budget'])}</code>, {_e(r['policy_type'])} preset "
           f"<code>{_e(r.get('preset'))}</code>, seeds {_e(r['seeds'])}.</p>",
           _table(["", "success (mean over tasks)", "95% CI (all episodes)", "per seed"], head)]
    if r.get("vision_dependence") is not None:
        out.append(f"<p>Vision dependence (success - blind control): <b>{r['vision_dependence']:+.1f} points</b>.</p>")
    out.append(_table(["task", "difficulty", "success", "95% CI", "blind", "vision dep."],
                      [[t, x["difficulty"], _pct(x["success_rate"]), _ci(x["ci95"]), _pct(x.get("blind_success")),
                        "-" if x.get("vision_dependence") is None else f"{x['vision_dependence']:+.0f}"]
                       for t, x in r["tasks"].items()]))
    out.append(_table(["run", "mean success", "best val L2", "train s", "steps", "parameters"],
                      [[n, _pct(x["mean_success_rate"]), _num(x["best_val_l2"]), f"{x['train_seconds']:,.0f}",
                        _num(x["train_steps"]), _num(x["parameters"])] for n, x in r["runs"].items()]))
    times = ", ".join(f"{k} {v}" for k, v in r.get("times_s", {}).items())
    hardware = ", ".join(f"{k} {v}" for k, v in r.get("hardware", {}).items())
    out.append("<h3>Speed</h3>" + _kv([("wall time per stage (s)", times), ("hardware", hardware)]))
    return "".join(out)


def _markdown_table_section(unit: Unit, r: dict) -> str:
    """table.md as HTML: markdown table lines become a table, other lines paragraphs (no markdown library)."""
    path = unit.path / "table.md"
    text = path.read_text() if path.is_file() else ""
    out, rows = [f"<p>made by <code>{_e(r['command'])}</code> on {_e(r['made'])}</p>"], []

    def flush() -> None:
        if rows:
            body = [x for x in rows[1:] if not set("".join(x)) <= set("-: ")]  # drop the |---| line
            out.append(_table(rows[0], body))
            rows.clear()

    for line in text.splitlines():
        if line.startswith("<!--"):
            continue
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        else:
            flush()
            if line.strip():
                out.append(f"<p>{_e(line)}</p>")
    flush()
    return "".join(out)


def _demo_section(r: dict) -> str:
    return _table(["policy", "val L2", "closed-loop success", "95% CI", "train s", "params"],
                  [[x["policy"], _num(x["val_l2"]), _pct(x["success_rate"]), _ci(x["success_ci95"]),
                    _num(x["train_seconds"], 3), _num(x["params"])] for x in r["rows"]])


def _bench_section(kind: str, r: dict) -> str:
    keys = (("samples_per_s", "batch_size", "mfu", "achieved_tflops", "peak_rss_mb", "peak_cuda_mb", "dtype", "device",
             "threads", "params") if kind == "bench_train" else
            ("mode", "latency_ms_p50", "latency_ms_p99", "chunks_per_s", "actions_per_s", "device", "threads",
             "params_total"))
    out = _kv([(k, _num(r[k])) for k in keys if k in r])
    if kind == "bench_infer":
        out += _table(["mode", "p50 ms", "p99 ms", "chunks / s", "max |err| vs eager"],
                      [[m, _num(x.get("latency_ms_p50")), _num(x.get("latency_ms_p99")), _num(x.get("chunks_per_s")),
                        _num(x.get("max_abs_err_vs_eager"))] if "error" not in x else [m, x["error"], "", "", ""]
                       for m, x in r["modes"].items()])
    return out


# ---- page ---------------------------------------------------------------------------------------------
def _headline(unit: Unit) -> str:
    parts = []
    if (h := unit.first("history")) is not None:
        parts.append(f"best val L2 {_num(h.get('best_val_l2'))}")
    if (r := unit.first("metaworld_eval")) is not None:
        o = r["overall"]
        parts.append(f"Meta-World success {_pct(r['mean_success_rate'])}"
                     + (f", blind {_pct(o['blind_success'])}" if "blind_success" in o else ""))
    if (r := unit.first("toy_eval")) is not None:
        parts.append(f"toy success {_pct(r['success_rate'])} ({_ci(r['success_ci95'])})")
    if (r := unit.first("reproduce")) is not None:
        parts.append(f"{r['benchmark'].upper()} success {_pct(r['success']['mean'])}")
    if (r := unit.first("ablation")) is not None:
        parts.append(f"ablation {r['grid']}: {len(r['rows'])} configs")
    if (r := unit.first("table")) is not None:
        parts.append(f"reproduced table {r['recipe']}")
    if (r := unit.first("demo")) is not None:
        parts.append(f"demo: {len(r['rows'])} policies")
    return "; ".join(parts) or ", ".join(unit.files)


def _unit_html(unit: Unit, media: _MediaBudget) -> str:
    parts = []  # (title, file name, render)
    if "run_config" in unit.files or "history" in unit.files:
        parts.append(("Training", "", lambda: _train_section(unit)))
    elif "checkpoint" in unit.files:
        c = unit.first("checkpoint")
        parts.append((f"Checkpoint ({c['type']})", "", lambda: _params_html(unit) + _details("config.json", c)))
    renders = {"table": ("Reproduced table", lambda r: _markdown_table_section(unit, r)),
               "reproduce": ("Reproduction", _reproduce_section), "demo": ("Demo: toy task", _demo_section),
               "ablation": ("Ablation", _ablation_section),
               "metaworld_eval": ("Meta-World closed loop", lambda r: _metaworld_section(unit, r, media)),
               "toy_eval": ("Toy task evaluation", _toy_section),
               "bench_train": ("Benchmark: training speed", lambda r: _bench_section("bench_train", r)),
               "bench_infer": ("Benchmark: inference speed", lambda r: _bench_section("bench_infer", r))}
    for kind, (title, render) in renders.items():
        for path, obj in unit.files.get(kind, []):
            env = obj.get("env", "metaworld") if kind == "metaworld_eval" else "metaworld"
            parts.append((title if env == "metaworld" else f"{env} closed loop", path.name,  # same format, other env
                          lambda r=obj, f=render: f(r)))
    out = []
    for title, name, render in parts:
        try:
            body = render()
        except Exception as e:  # noqa: BLE001 - another version's file: say so on the page, render the rest
            body = f"<p class=\"note\">could not read {_e(name or unit.path.name)}: {_e(type(e).__name__)} {_e(e)}</p>"
        small = f" <small>({_e(name)})</small>" if name else ""
        out.append(f"<h3 class=\"kind\">{_e(title)}{small}</h3>{body}")
    return "".join(out)


def build_report(run_dir: str | Path, *, title: str = "", media_cap: int = MEDIA_CAP_BYTES,
                 media_total: int = MEDIA_TOTAL_BYTES) -> str:
    """The report page (HTML text) for everything found under `run_dir`."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"{str(root)!r} is not a directory")
    units = discover(root)
    if not units:
        raise ConfigError(f"no run files found under {str(root)!r} (run_config.json, history.json, results.json, "
                          "ablation.json, report.json, ...)")
    media = _MediaBudget(media_cap, media_total)
    title = title or f"tinyvla run report: {root.resolve().name}"
    names = [str(u.path.relative_to(root)) if u.path != root else "." for u in units]
    toc = _table(["run", "contents"], [[_Raw(f'<a href="#u{i}">{_e(n)}</a>'), _headline(u)]
                                       for i, (n, u) in enumerate(zip(names, units))])
    body = "".join(f'<section id="u{i}"><h2>{_e(n)}</h2>{_unit_html(u, media)}</section>'
                   for i, (n, u) in enumerate(zip(names, units)))
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1><p class=\"hint\">{_e(root.resolve())}, written "
            f"{stamp}</p>{toc}{body}</body></html>\n")


def write_report(run_dir: str | Path, out: str | Path | None = None, **kwargs) -> Path:
    """Write `out` (default RUN_DIR/report.html) and return its path; kwargs go to `build_report`."""
    page = build_report(run_dir, **kwargs)
    path = Path(out) if out else Path(run_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a page
    return path


def try_write_report(run_dir: str | Path) -> Path | None:
    """`write_report` for the end of a run: a report that cannot be written is a warning, never a failure."""
    try:
        return write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - the run's results are already on disk; the page is a convenience
        warnings.warn(f"could not write {Path(run_dir) / REPORT_NAME}: {type(e).__name__}: {e}", stacklevel=2)
        return None


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ccc; margin-top: 2em; } h3 { margin-bottom: .3em; }
h3.kind { color: #245; } small { color: #777; font-weight: normal; }
table { border-collapse: collapse; margin: .4em 0 1em; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
th { background: #f3f3f3; text-align: left; } tbody tr:nth-child(even) { background: #fafafa; }
.cards { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
img.plot { max-width: 100%; display: block; margin: .5em 0; }
.media { display: flex; flex-wrap: wrap; gap: 8px; } figure { margin: 0; text-align: center; font-size: 12px; }
.rollout { width: 192px; height: auto; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption.ok { color: #070; } figcaption.fail { color: #a00; } .note, .hint { color: #666; font-size: 12px; }
pre { background: #f6f6f6; padding: .5em; max-height: 30em; overflow: auto; font-size: 12px; }
"""

__all__ = ["build_report", "write_report", "try_write_report", "discover", "classify", "parameter_counts",
           "shrink_gif", "Unit", "REPORT_NAME"]
