"""Meta-World evaluation: the checkpoint's camera, the blind control, temporal ensembling in the batched loop.

Needs `metaworld` and an OpenGL backend like tests/envs/test_metaworld.py; 32 px, one 20-step episode."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES

from tinyvla.cli import main
from tinyvla.constants import OBS_IMAGE, OBS_STATE
from tinyvla.envs.metaworld import INSTRUCTIONS, MetaWorldEnv
from tinyvla.errors import ConfigError
from tinyvla.eval.results import ClosedLoopResult
from tinyvla.eval.metaworld import (SHADOW_SEED_OFFSET, MetaWorldEvalConfig, MetaWorldResult, _worker,
                                        eval_seed, evaluate_metaworld, resolve_camera, write_report)

CLOSE = {"camera": "corner2", "camera_pos": [0.75, 0.075, 0.7], "crop": 1.0}  # what --camera-pos close records
SEED = eval_seed(0, "reach-v3", 0)


def first_image(seed: int, **camera) -> np.ndarray:
    env = MetaWorldEnv("reach-v3", 32, **camera)
    try:
        return env.reset(seed=seed)[0]["image"]
    finally:
        env.close()


def test_resolve_camera_takes_the_checkpoints_and_refuses_another():
    assert resolve_camera(MetaWorldEvalConfig(), CLOSE, 32) == CLOSE
    assert resolve_camera(MetaWorldEvalConfig(camera="corner2", camera_pos="close", crop=1.0), CLOSE, 32) == CLOSE
    assert resolve_camera(MetaWorldEvalConfig(), {}, 32) == {"camera": "corner2", "camera_pos": None, "crop": 1.0}
    assert resolve_camera(MetaWorldEvalConfig(camera="corner3", crop=0.5), None, 32)["crop"] == 0.5  # no record: flags
    for bad in ({"camera_pos": "closer"}, {"camera": "corner3"}, {"crop": 0.8}):
        with pytest.raises(ConfigError, match="differs from the checkpoint's"):
            resolve_camera(MetaWorldEvalConfig(**bad), CLOSE, 32)


class FakeConn:
    def __init__(self, messages):
        self.messages, self.sent = list(messages), []

    def recv(self):
        return self.messages.pop(0)

    def send(self, message):
        self.sent.append(message)


def test_blind_slot_sees_the_live_image_of_another_scene_with_its_own_state():
    a = np.array([0.5, 0.2, 0.0, 0.0], np.float32)
    conn = FakeConn([("reset", [(0, "reach-v3", SEED, None), (1, "reach-v3", SEED, SEED + SHADOW_SEED_OFFSET)]),
                     ("step", [(0, a, True), (1, a, True)]), ("step", [(0, a, False), (1, a, False)]), ("close", [])])
    _worker(conn, 32, {"camera": "corner2", "camera_pos": None, "crop": 1.0}, 5)
    assert [status for status, _ in conn.sent] == ["ok"] * 3
    (_, reset), (_, step), (_, quiet) = conn.sent
    for (_, sighted, *_), (_, blind, *_) in (reset, step):
        assert np.array_equal(sighted["state"], blind["state"])  # the control env's robot state...
        assert not np.array_equal(sighted["image"], blind["image"])  # ...and another scene's picture
    assert np.array_equal(reset[1][1]["image"], first_image(SEED + SHADOW_SEED_OFFSET))
    assert reset[0][2] == reset[1][2]  # the control episode's instruction
    assert quiet[0][1]["image"] is None and quiet[1][1]["image"] is None  # frames only when the policy reads one


class StubPolicy:
    """Records each batch; predicts zeros (the arm stays, episodes run to max_steps)."""

    def __init__(self, temporal_ensemble: bool, n_action_steps: int = 4):
        self.config = SimpleNamespace(image_size=32, action_dim=4, chunk_size=4, n_action_steps=n_action_steps,
                                      camera=CLOSE, temporal_ensemble=temporal_ensemble, temporal_ensemble_coef=0.01)
        self.state_dim, self.batches = 4, []

    def predict_action_chunk(self, batch):
        self.batches.append((batch[OBS_IMAGE][0].numpy().copy(), batch[OBS_STATE][0].numpy().copy()))
        return torch.zeros(len(batch[OBS_IMAGE]), 4, 4)


@pytest.mark.parametrize("temporal_ensemble, blind", [(True, True), (False, False)])
def test_eval_renders_the_checkpoints_camera_and_runs_the_blind_control(temporal_ensemble, blind, monkeypatch):
    import tinyvla.eval.metaworld as em

    acts = []

    class CountingEnsembler(em.TemporalEnsembler):
        def act(self):
            acts.append(self.t)
            return super().act()

    monkeypatch.setattr(em, "TemporalEnsembler", CountingEnsembler)
    policy = StubPolicy(temporal_ensemble)
    cfg = MetaWorldEvalConfig(tasks="reach", episodes=1, max_steps=20, workers=1, videos=0, blind=blind)
    result = evaluate_metaworld(policy, cfg, progress=False)
    # Temporal ensembling plans at every step and executes the ensembled action; otherwise one plan per 4 steps.
    calls = 20 if temporal_ensemble else 5
    passes = 2 if blind else 1
    assert len(policy.batches) == calls * passes and result.env_steps == 20
    assert acts == (list(range(20)) * passes if temporal_ensemble else [])  # a fresh ensembler per episode
    assert np.array_equal(policy.batches[0][0], first_image(SEED, camera_pos="close"))  # the checkpoint's camera
    assert not np.array_equal(policy.batches[0][0], first_image(SEED))
    report = result.to_dict()
    assert report["camera"] == CLOSE
    row = report["tasks"]["reach-v3"]
    if not blind:
        assert result.blind is None and "blind_success" not in row and "blind_success" not in report["overall"]
        return
    blind_first = policy.batches[calls]  # the blind pass replays episode 0 through the shadow's camera
    assert np.array_equal(blind_first[1], policy.batches[0][1])  # same robot state
    assert not np.array_equal(blind_first[0], policy.batches[0][0])  # another scene
    assert result.blind["reach-v3"].episodes == 1
    assert row["vision_dependence"] == pytest.approx(100 * (row["success_rate"] - row["blind_success"]))
    assert {"blind_success", "vision_dependence"} <= set(report["overall"])


def test_blind_keys_and_report_columns(tmp_path):
    sighted = {"reach-v3": ClosedLoopResult(4, 3, 50.0), "push-v3": ClosedLoopResult(4, 1, 90.0)}
    blind = {"reach-v3": ClosedLoopResult(4, 1, 80.0), "push-v3": ClosedLoopResult(4, 1, 90.0)}
    result = MetaWorldResult(sighted, 1.0, 10, [], CLOSE, blind=blind)
    report = result.to_dict()
    assert report["tasks"]["reach-v3"]["blind_success"] == 0.25
    assert report["tasks"]["reach-v3"]["vision_dependence"] == pytest.approx(50.0)
    assert report["tasks"]["push-v3"]["vision_dependence"] == pytest.approx(0.0)
    assert report["overall"]["blind_success"] == pytest.approx(0.25)
    assert report["overall"]["vision_dependence"] == pytest.approx(25.0)  # mean 50% sighted - 25% blind
    write_report(report, tmp_path)
    md = (tmp_path / "results.md").read_text()
    assert "| blind | vision dep. |" in md and "| 25% | +50 pts |" in md and (tmp_path / "success.png").is_file()


@pytest.fixture(scope="module")
def close_checkpoint(tmp_path_factory):
    """An untrained tiny policy for Meta-World (32 px, 4-d actions and state) whose data was rendered close."""
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.pipeline import build_run_config, new_policy

    run = build_run_config("tinyvla", "tiny", {**TINY_OVERRIDES, "policy.action_dim": 4, "policy.state_dim": 4,
                                               "policy.image_size": 32, "policy.chunk_size": 4,
                                               "policy.n_action_steps": 4})
    run.policy.camera = dict(CLOSE)
    tasks = INSTRUCTIONS["reach-v3"]
    n = 8
    ds = FrameDataset(torch.zeros(n, 3, 32, 32, dtype=torch.uint8), torch.randn(n, 4), torch.randn(n, 4),
                      torch.arange(n) % len(tasks), tasks, info={"task": "lerobot"})
    path = tmp_path_factory.mktemp("ckpt") / "close"
    new_policy(run.policy, ds).save_pretrained(path)
    return path


def test_cli_uses_the_checkpoints_camera_and_refuses_another(close_checkpoint, tmp_path, capsys):
    base = ["eval", "--env", "metaworld", "--checkpoint", str(close_checkpoint), "--tasks", "reach", "--episodes", "1",
            "--max-steps", "20", "--workers", "1", "--videos", "0", "--device", "cpu"]
    assert main([*base, "--camera-pos", "closer"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--camera-pos" in err and "checkpoint's" in err and "\n" not in err
    dataset = tmp_path / "data"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "tinyvla.json").write_text(json.dumps({"camera": {**CLOSE, "crop": 0.5, "image_size": 32}}))
    assert main([*base, "--dataset", str(dataset)]) == 2
    assert "camera settings differ" in capsys.readouterr().err

    assert main([*base, "--n-action-steps", "5"]) == 2  # more than the chunk of 4
    err = capsys.readouterr().err.strip()
    assert "--n-action-steps 5 is outside 1..4" in err and "\n" not in err
    assert main([*base, "--threads", "-1"]) == 2
    assert "--threads must be >= 0" in capsys.readouterr().err

    out = tmp_path / "eval"
    threads = torch.get_num_threads()
    assert main([*base, "--no-blind", "--camera-pos", "close", "--n-action-steps", "2", "--envs", "3", "--threads",
                 str(threads), "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["camera"] == CLOSE  # the same as recorded: fine
    assert report["n_action_steps"] == 2  # this evaluation's override, reported
    assert report["envs"] == 1 and report["threads"] == threads  # 1 episode: one env, whatever --envs asks
    assert "blind_success" not in report["overall"] and "blind_success" not in report["tasks"]["reach-v3"]


def test_fewer_executed_steps_plan_more_often():
    """n_action_steps 2 of a 4-action chunk: one plan every 2 env steps (the `--n-action-steps` override's effect)."""
    policy = StubPolicy(temporal_ensemble=False, n_action_steps=2)
    cfg = MetaWorldEvalConfig(tasks="reach", episodes=1, max_steps=20, workers=1, videos=0, blind=False)
    result = evaluate_metaworld(policy, cfg, progress=False)
    assert len(policy.batches) == 10 and result.env_steps == 20


class ScriptedPool:
    """Stands in for the env processes: episode `seed` lasts 2 + seed % 3 steps; the state carries the seed.
    `reverse` answers in the opposite slot order, as another grouping of slots into processes could."""

    def __init__(self, slots: int, reverse: bool):
        self.slots, self.reverse, self.live = slots, reverse, {}

    def call(self, cmd, items):
        out = []
        for item in items:
            if cmd == "reset":
                slot, _, seed, _ = item
                self.live[slot] = [seed, 0]
            else:
                self.live[item[0]][1] += 1
            seed, t = self.live[item[0]]
            done = t >= 2 + seed % 3
            out.append((item[0], {"image": np.zeros((3, 8, 8), np.uint8), "state": np.full(4, seed, np.float32)},
                        "reach", done, done))
        return out[::-1] if self.reverse else out


def test_batches_depend_on_envs_not_on_how_workers_answer():
    """The policy's batches (which episodes are planned together, in which row) must not change with the worker
    count: a float result depends on its batch, and a closed loop amplifies the last bit."""
    import tinyvla.eval.metaworld as em

    seen = {}
    for reverse in (False, True):
        policy = StubPolicy(temporal_ensemble=False, n_action_steps=1)
        policy.predict_action_chunk = lambda batch, p=policy: (p.batches.append(batch[OBS_STATE][:, 0].tolist())
                                                               or torch.zeros(len(batch[OBS_STATE]), 4, 4))
        cfg = MetaWorldEvalConfig(tasks="reach,push", episodes=5, workers=1, videos=0, blind=False)
        per_task, steps, _ = em._rollout(policy, ScriptedPool(4, reverse), cfg, ["reach-v3", "push-v3"], blind=False,
                                         out=None, progress=False)
        seen[reverse] = policy.batches
        assert sum(r.episodes for r in per_task.values()) == 10
    assert seen[False] == seen[True]
    assert any(0 < len(b) < 4 for b in seen[False])  # episodes of different lengths: the slots did desynchronise


def test_envs_fixes_the_slots_whatever_the_worker_count(monkeypatch):
    import tinyvla.eval.metaworld as em

    made = []

    class NoPool:
        def __init__(self, workers, slots, *args):
            made.append((workers, slots))
            raise RuntimeError("stop")

    monkeypatch.setattr(em, "_EnvPool", NoPool)
    for workers, envs, per_worker in ((1, 16, None), (2, 16, None), (4, 5, None), (2, 99, 3)):
        cfg = MetaWorldEvalConfig(tasks="reach", episodes=20, workers=workers, envs=envs, envs_per_worker=per_worker)
        with pytest.raises(RuntimeError):
            evaluate_metaworld(StubPolicy(False), cfg, progress=False)
    assert made == [(1, 16), (2, 16), (4, 5), (2, 6)]  # --envs-per-worker, the older spelling: workers x it
    with pytest.raises(ConfigError):
        MetaWorldEvalConfig(envs=0).validate()
