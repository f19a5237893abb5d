"""Meta-World: task sets, headless rendering, expert demos -> LeRobot dataset, closed-loop eval, bad input.

These need `metaworld` and an OpenGL backend (Debian's libosmesa6, which `.ci/run` installs): tiny
resolution, 1-2 episodes, so they run in CI."""

import json

import numpy as np
import pytest

from tinyvla.cli import main
from tinyvla.envs.metaworld import DIFFICULTY, MT10, MT50, MetaWorldEnv, resolve_tasks
from tinyvla.errors import ConfigError


def test_task_sets_and_names():
    assert resolve_tasks("mt10") == MT10 and len(resolve_tasks("mt50")) == 50
    assert sorted(sum(DIFFICULTY.values(), [])) == MT50  # the four groups partition MT50
    assert [len(DIFFICULTY[g]) for g in ("easy", "medium", "hard", "very_hard")] == [28, 11, 6, 5]
    assert resolve_tasks("reach,push-v3,reach") == ["reach-v3", "push-v3"]
    with pytest.raises(ConfigError, match="unknown Meta-World task 'reech'.*reach"):
        resolve_tasks("reech")


def test_env_renders_upright_images_and_resets_reproducibly():
    env = MetaWorldEnv("reach-v3", image_size=32)
    try:
        obs, info = env.reset(seed=3)
        assert obs["image"].shape == (3, 32, 32) and obs["image"].dtype == np.uint8
        assert obs["image"].std() > 5  # a real picture, not a blank buffer
        assert obs["state"].shape == (4,) and info["instruction"] in env.instructions
        first = obs["state"].copy()
        obs2, _ = env.reset(seed=3)
        assert np.array_equal(obs2["state"], first) and np.array_equal(obs2["image"], obs["image"])
        obs, _, _, _, _ = env.step(env.expert_action(), render=False)
        assert obs["image"] is None  # frames only when asked for
    finally:
        env.close()


def test_closing_one_env_leaves_the_others_rendering():
    """Several envs in one process (the evaluation's slots): closing one while another's GL context is current
    used to free that other env's framebuffer, whose frames were then stale memory. Each env's frames must stay
    those of a fresh env in the same state, and a render that writes nothing is an error, not a frame."""
    from tinyvla.envs.metaworld import EnvError

    envs = [MetaWorldEnv("reach-v3", 32) for _ in range(3)]
    try:
        for k, env in enumerate(envs):
            env.reset(seed=k)
        gone = MetaWorldEnv("push-v3", 32)
        gone.reset(seed=7)
        envs[1].reset(seed=1)  # its context is the current one when `gone` is closed
        gone.close()
        envs.append(MetaWorldEnv("door-open-v3", 32))
        for k, env in enumerate(envs):
            fresh = MetaWorldEnv(env.task, 32)
            try:
                assert np.array_equal(env.reset(seed=k)[0]["image"], fresh.reset(seed=k)[0]["image"])
            finally:
                fresh.close()
        envs[0]._renderer.render = lambda out: out  # what a broken context does: nothing written
        with pytest.raises(EnvError, match="no image"):
            envs[0].render()
    finally:
        for env in envs:
            env.close()


def test_missing_render_backend_is_a_clear_error(monkeypatch):
    import mujoco

    from tinyvla.envs.metaworld import EnvError

    def broken(*a, **k):
        raise RuntimeError("no OpenGL context")

    monkeypatch.setattr(mujoco, "Renderer", broken)
    with pytest.raises(EnvError, match="libosmesa6"):
        MetaWorldEnv("reach-v3", image_size=32)


def test_broken_gl_library_at_import_is_one_line(monkeypatch, capsys, tmp_path):
    """PyOpenGL without a working libOSMesa fails at import with an AttributeError, not an ImportError."""
    import builtins

    real_import = builtins.__import__

    def gl_broken(name, *a, **k):
        if name == "metaworld.policies":
            raise AttributeError("'NoneType' object has no attribute 'glGetError'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", gl_broken)
    rc = main(["data", "metaworld", "--tasks", "reach", "--episodes-per-task", "1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "libosmesa6" in err and "glGetError" in err and len(err.splitlines()) == 1, err


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("mw") / "reach"
    assert main(["data", "metaworld", "--tasks", "reach", "--episodes-per-task", "2", "--image-size", "32",
                 "--workers", "1", "--out", str(out)]) == 0
    return out


def test_generation_writes_a_lerobot_dataset_of_successful_demos(reach_dataset):
    from tinyvla.data.lerobot import load_lerobot

    info = json.loads((reach_dataset / "meta" / "info.json").read_text())
    report = json.loads((reach_dataset / "meta" / "tinyvla.json").read_text())["report"]
    assert info["total_episodes"] == 2 and report["tasks"]["reach-v3"]["successes"] == 2
    assert report["expert_success_rate"] > 0
    frames = load_lerobot(reach_dataset)
    assert frames.images.shape[1:] == (3, 32, 32) and len(frames.images) == info["total_frames"]
    assert frames.actions.shape[1] == 4 and frames.states.shape[1] == 4
    assert set(frames.tasks) <= set(MetaWorldEnv.__init__.__globals__["INSTRUCTIONS"]["reach-v3"])
    assert not list(reach_dataset.parent.glob(".reach.partial-*"))


def test_train_then_evaluate_one_episode(reach_dataset, tmp_path):
    from tinyvla.eval.metaworld import MetaWorldEvalConfig, evaluate_metaworld, write_report
    from tinyvla.policies.base import Policy

    tiny = ["--policy.vision_width", "32", "--policy.vision_layers", "1", "--policy.vision_heads", "2",
            "--policy.lang_width", "32", "--policy.lang_layers", "1", "--policy.lang_heads", "2",
            "--policy.pool_heads", "2", "--policy.head_hidden", "32", "--train.progress", "false"]
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(reach_dataset), "--out", str(run), "--train.steps", "4",
                 "--train.eval_every", "2", "--policy.chunk_size", "4", "--policy.n_action_steps", "4", *tiny]) == 0
    policy = Policy.from_pretrained(run / "best")
    assert policy.config.action_dim == 4 and policy.state_dim == 4
    result = evaluate_metaworld(policy, MetaWorldEvalConfig(tasks="reach", episodes=1, max_steps=12, workers=1,
                                                            videos=1), out_dir=tmp_path / "eval", progress=False)
    r = result.per_task["reach-v3"]
    assert r.episodes == 1 and r.mean_steps <= 12 and result.env_steps == r.mean_steps
    report = {"checkpoint": str(run / "best"), "episodes_per_task": 1, "max_steps": 12, "seed": 0, **result.to_dict()}
    write_report(report, tmp_path / "eval")
    for name in ("results.json", "results.md", "success.png"):
        assert (tmp_path / "eval" / name).is_file()
    assert len(result.videos) == 1 and result.videos[0].endswith(".gif")
    assert "| reach-v3 | easy |" in (tmp_path / "eval" / "results.md").read_text()

    # The same episode through `tinyvla serve` + PolicyClient gives the same outcome and length.
    from tinyvla.serving.client import PolicyClient
    from tinyvla.serving.server import PolicyServer, ServeConfig

    with PolicyServer(policy, ServeConfig(port=0)).start_background() as server:
        client = PolicyClient(server.url)
        try:
            remote = evaluate_metaworld(client, MetaWorldEvalConfig(tasks="reach", episodes=1, max_steps=12,
                                                                    workers=1, videos=0), progress=False)
        finally:
            client.close()
    assert remote.per_task["reach-v3"].successes == r.successes and remote.env_steps == result.env_steps


def test_cli_bad_input(reach_dataset, tmp_path, capsys):
    assert main(["data", "metaworld", "--tasks", "reech", "--out", str(tmp_path / "x")]) == 2
    assert "unknown Meta-World task" in capsys.readouterr().err
    assert main(["eval", "--env", "metaworld", "--tasks", "mt10", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--dataset", str(reach_dataset), "--out", str(tmp_path / "r"),
                 "--policy.action_dim", "2", "--train.steps", "1"]) == 2
    assert "dimension 4" in capsys.readouterr().err
