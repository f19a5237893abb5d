"""The policy server: parity with the local policy, batching, validation, auth, back-pressure, client."""

import base64
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

pytest.importorskip("aiohttp")
msgpack = pytest.importorskip("msgpack")

from conftest import TINY_OVERRIDES

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.pipeline import build_run_config, new_policy
from tinyvla.serving.client import PolicyClient, ServerError
from tinyvla.serving.server import PolicyServer, ServeConfig


@pytest.fixture(scope="module")
def policy():
    from tinyvla.data.toy import generate_toy_dataset

    torch.manual_seed(0)
    run = build_run_config("tinyvla", "tiny", {**TINY_OVERRIDES, "policy.chunk_size": 2})
    return new_policy(run.policy, generate_toy_dataset(64, 0)).eval()


@pytest.fixture(scope="module")
def server(policy):
    with PolicyServer(policy, ServeConfig(port=0, max_batch=16, max_wait_ms=20, max_payload_mb=1)).start_background() as s:
        yield s


def post(url, body, headers=None, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url + "/act", data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def observation(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=g), "go to the red block"


def test_health_and_metadata(server):
    client = PolicyClient(server.url)
    assert client.health()["status"] == "ok"
    meta = client.metadata()
    assert meta["image_shape"] == [3, 64, 64] and meta["action_dim"] == 2 and meta["chunk_size"] == 2
    assert "mean" in meta["normalization"]["action"]


def test_http_and_ws_match_the_local_policy(server, policy):
    image, text = observation()
    local = policy.predict_action_chunk({OBS_IMAGE: image[None], TASK: [text]})[0].numpy()
    status, reply = post(server.url, {"image": image.tolist(), "instruction": text})
    assert status == 200 and np.allclose(reply["actions"], local, atol=1e-5)
    b64 = {"image": base64.b64encode(image.numpy().tobytes()).decode(), "image_encoding": "base64-uint8",
           "instruction": text}
    assert np.allclose(post(server.url, b64)[1]["actions"], local, atol=1e-5)
    with PolicyClient(server.url, transport="ws") as ws:
        assert np.allclose(ws.act(image, text), local, atol=1e-5)
        with pytest.raises(ServerError, match="400"):
            ws.act(image[:, :10], text)  # wrong byte count
        assert np.allclose(ws.act(image, text), local, atol=1e-5)  # the connection survives a bad frame
    # float images travel as lists, so the server sees exactly the local policy's input
    fimage = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3))
    flocal = policy.predict_action_chunk({OBS_IMAGE: fimage[None], TASK: [text]})[0].numpy()
    with PolicyClient(server.url) as client:
        assert np.allclose(client.act(fimage, text), flocal, atol=1e-5)


def test_raw_websocket_msgpack(server, policy):
    """A non-Python robot: raw msgpack frames, untagged (answered in order) on one connection."""
    import asyncio

    import aiohttp

    image, text = observation(1)
    local = policy.predict_action_chunk({OBS_IMAGE: image[None], TASK: [text]})[0].numpy()

    async def talk():
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "/ws") as sock:
            replies = []
            for frame in (msgpack.packb({"image": image.numpy().tobytes(), "instruction": text}), b"\xc1garbage",
                          msgpack.packb({"image": image.tolist(), "instruction": text})):
                await sock.send_bytes(frame)
                replies.append(msgpack.unpackb(await sock.receive_bytes(), raw=False))
            return replies

    ok, bad, as_list = asyncio.run(talk())
    assert np.allclose(ok["actions"], local, atol=1e-5) and np.allclose(as_list["actions"], local, atol=1e-5)
    assert bad["status"] == 400 and "msgpack" in bad["error"]


def test_concurrent_requests_are_batched_and_correct(server, policy):
    images = torch.stack([observation(i)[0] for i in range(16)])
    local = policy.predict_action_chunk({OBS_IMAGE: images, TASK: ["go to the blue block"] * 16}).numpy()
    before = PolicyClient(server.url).health()
    remote = PolicyClient(server.url).predict_action_chunk({OBS_IMAGE: images, TASK: ["go to the blue block"] * 16})
    after = PolicyClient(server.url).health()
    assert np.allclose(remote.numpy(), local, atol=1e-5)
    batches = after["batches"] - before["batches"]
    assert batches < 16  # some requests shared a forward pass
    with PolicyClient(server.url, transport="ws") as ws:  # pipelined on ONE connection: batched too
        before = ws.health()
        remote = ws.predict_action_chunk({OBS_IMAGE: images, TASK: ["go to the blue block"] * 16})
        after = ws.health()
    assert np.allclose(remote.numpy(), local, atol=1e-5)
    assert after["batches"] - before["batches"] < 16


@pytest.mark.parametrize("body,needle", [
    ({"image": [[0.0] * 64] * 64, "instruction": "go"}, "shape"),
    ({"image": np.full((3, 64, 64), np.nan).tolist(), "instruction": "go"}, "NaN"),
    ({"image": np.zeros((3, 64, 64)).tolist()}, "missing"),
    ({"image": np.zeros((3, 64, 64)).tolist(), "instruction": "  "}, "instruction"),
    ({"image": np.full((3, 64, 64), 2.0).tolist(), "instruction": "go"}, "[0, 1]"),
    ({"image": "abc", "instruction": "go"}, "image_encoding"),
    ([1, 2, 3], "object"),
])
def test_bad_input_is_a_4xx_and_the_server_survives(server, body, needle):
    status, reply = post(server.url, body)
    assert 400 <= status < 500 and needle in reply["error"], reply
    image, text = observation()
    assert post(server.url, {"image": image.tolist(), "instruction": text})[0] == 200


def test_non_json_and_oversized_payloads(server):
    status, reply = post(server.url, b"{not json", raw=True)
    assert status == 400 and "JSON" in reply["error"]
    status, reply = post(server.url, b"x" * (2 * 1024 * 1024), raw=True)
    assert status == 413
    big = torch.zeros(3, 1024, 1024, dtype=torch.uint8)
    for transport in ("http", "ws"):  # the client refuses what the server would refuse
        with PolicyClient(server.url, transport=transport) as client, pytest.raises(ServerError, match="max-payload"):
            client.act(big, "go")
    with PolicyClient(server.url, transport="ws") as ws:  # a frame the server refuses closes the socket ...
        ws._meta["max_payload_mb"] = None  # (skip the client's own check)
        with pytest.raises(ServerError, match="1009|closed|lost|reset"):
            ws.act(big, "go")
        image, text = observation()
        assert ws.act(image, text).shape == (2, 2)  # ... and the client reconnects


def test_bearer_token(policy):
    with PolicyServer(policy, ServeConfig(port=0, token="s3cret")).start_background() as s:
        image, text = observation()
        body = {"image": image.tolist(), "instruction": text}
        assert post(s.url, body)[0] == 401
        assert post(s.url, body, {"Authorization": "Bearer wrong"})[0] == 401
        assert post(s.url, body, {"Authorization": "Bearer s3cret"})[0] == 200
        assert urllib.request.urlopen(s.url + "/health", timeout=10).status == 200  # health stays open
        with pytest.raises(ServerError, match="401"):
            PolicyClient(s.url)
        assert PolicyClient(s.url, token="s3cret").metadata()["policy"] == "tinyvla"


class SlowPolicy(torch.nn.Module):
    """Wraps a policy and blocks inference until released, to fill the queue."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.release = inner, threading.Event()
        self.config, self.stats, self.name, self.state_dim = inner.config, inner.stats, inner.name, 0

    def predict_action_chunk(self, batch):
        self.release.wait(20)
        return self.inner.predict_action_chunk(batch)


def test_full_queue_answers_503(policy):
    slow = SlowPolicy(policy)
    with PolicyServer(slow, ServeConfig(port=0, max_batch=1, max_wait_ms=0, max_queue=1)).start_background() as s:
        image, text = observation()
        body = {"image": image.tolist(), "instruction": text}
        results = []
        threads = [threading.Thread(target=lambda: results.append(post(s.url, body)[0])) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.2)
        slow.release.set()
        for t in threads:
            t.join(30)
        assert 503 in results and 200 in results, results


def test_closed_loop_through_the_client_and_bench(server, policy, tmp_path):
    from tinyvla.eval.toy import closed_loop
    from tinyvla.serving.bench import bench_serve

    client = PolicyClient(server.url)
    remote = closed_loop(client, 4, seed=5, batch=4)
    local = closed_loop(policy, 4, seed=5, batch=4)
    assert remote.episodes == 4 and remote.successes == local.successes and remote.mean_steps == local.mean_steps
    result = bench_serve(server.url, clients=3, requests=4)
    assert {"clients", "requests", "errors", "latency_ms_p50", "latency_ms_p99", "requests_per_s"} <= set(result)
    assert result["requests"] == 12 and result["errors"] == 0


def test_cli_bench_serve_and_eval_server(server, policy, tmp_path, capsys):
    from tinyvla.cli import main

    out = tmp_path / "serve.json"
    assert main(["bench", "serve", "--url", server.url, "--clients", "2", "--requests", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["requests"] == 6
    ckpt = tmp_path / "ckpt"
    policy.save_pretrained(ckpt)
    assert main(["eval", "--server", server.url, "--checkpoint", str(ckpt), "--episodes", "2", "--transport", "ws"]) == 0
    assert "closed-loop success" in capsys.readouterr().out
    assert main(["eval", "--server", "http://127.0.0.1:9"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert main(["eval", "--server", "localhost:8000"]) == 2
    assert "http://" in capsys.readouterr().err


def test_cli_bench_serve_in_process_from_a_checkpoint(policy, tmp_path, capsys):
    from tinyvla.cli import main

    ckpt, out = tmp_path / "ckpt", tmp_path / "bench.json"
    policy.save_pretrained(ckpt)
    argv = ["bench", "serve", "--checkpoint", str(ckpt), "--device", "cpu", "--clients", "4", "--requests", "3",
            "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert {"clients", "requests", "errors", "latency_ms_p50", "latency_ms_p99", "requests_per_s"} <= set(result)
    assert result["clients"] == 4 and result["requests"] == 12 and result["errors"] == 0
    assert "bench serve: 4 clients" in capsys.readouterr().out


def test_state_is_validated_for_policies_that_read_it(tmp_path):
    from tinyvla.data.toy import generate_toy_dataset

    run = build_run_config("vla_adapter", "tiny", {
        "policy.width": 32, "policy.layers": 1, "policy.heads": 2, "policy.vision_width": 32,
        "policy.vision_layers": 1, "policy.vision_heads": 2, "policy.num_queries": 2, "policy.policy_heads": 2})
    vla = new_policy(run.policy, generate_toy_dataset(32, 0))
    with PolicyServer(vla, ServeConfig(port=0)).start_background() as s:
        image, text = observation()
        assert PolicyClient(s.url).metadata()["state_dim"] == 2
        assert "missing" in post(s.url, {"image": image.tolist(), "instruction": text})[1]["error"]
        status, reply = post(s.url, {"image": image.tolist(), "instruction": text, "state": [0.1, 0.2, 0.3]})
        assert status == 400 and "2 values" in reply["error"]
        status, reply = post(s.url, {"image": image.tolist(), "instruction": text, "state": [0.1, float("nan")]})
        assert status == 400
        status, reply = post(s.url, {"image": image.tolist(), "instruction": text, "state": [0.1, 0.2]})
        expected = vla.predict_action_chunk({OBS_IMAGE: image[None], TASK: [text], OBS_STATE: torch.tensor([[0.1, 0.2]])})
        assert status == 200 and np.allclose(reply["actions"], expected[0].numpy(), atol=1e-5)


class FailingPolicy(SlowPolicy):
    """DataError for instruction "bad", RuntimeError for "boom", the real policy otherwise."""

    def predict_action_chunk(self, batch):
        from tinyvla.errors import DataError

        if "boom" in batch[TASK]:
            raise RuntimeError("kaboom")
        if "bad" in batch[TASK]:
            raise DataError("this instruction is bad")
        return self.inner.predict_action_chunk(batch)


def test_policy_errors_are_4xx_or_500_and_spare_the_rest_of_the_batch(policy):
    with PolicyServer(FailingPolicy(policy), ServeConfig(port=0, max_wait_ms=50)).start_background() as s:
        image, text = observation()
        body = {"image": image.tolist(), "instruction": text}
        status, reply = post(s.url, {**body, "instruction": "boom"})
        assert status == 500 and "kaboom" in reply["error"]
        results = {}
        threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, post(s.url, {**body, "instruction": k})))
                   for k in ("bad", text, "go to the blue box")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results["bad"][0] == 400 and "bad" in results["bad"][1]["error"]
        assert results[text][0] == 200 and results["go to the blue box"][0] == 200
        assert post(s.url, body)[0] == 200


def test_unknown_paths_and_methods_are_json_errors(server):
    for method, path, code in (("GET", "/nope", 404), ("GET", "/act", 405)):
        req = urllib.request.Request(server.url + path, method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == code and "endpoints" in json.loads(e.value.read())["error"]
