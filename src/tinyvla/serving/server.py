"""An aiohttp policy server with dynamic batching.

Requests from all clients go into one bounded queue; a single worker takes up to `max_batch` of them,
waiting at most `max_wait_ms` after the first, runs ONE batched `predict_action_chunk` in a thread
(so the event loop keeps accepting requests), and answers each. A full queue answers 503 at once:
back-pressure instead of unbounded latency.

Endpoints: GET /health, GET /metadata, POST /act (JSON), GET /ws (WebSocket, msgpack frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.errors import ConfigError, TinyVLAError
from tinyvla.serving.protocol import Observation, RequestError, decode_observation


def _require_aiohttp():
    try:
        import aiohttp  # noqa: F401
        import msgpack  # noqa: F401
    except ImportError:
        raise ConfigError("the policy server needs aiohttp and msgpack: pip install 'tinyvla[serve]'") from None


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256
    token: str = ""  # bearer token; empty = no authentication
    max_payload_mb: float = 8.0

    def validate(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1 or self.max_wait_ms < 0 or self.max_payload_mb <= 0:
            raise ConfigError("max_batch and max_queue must be >= 1, max_wait_ms >= 0, max_payload_mb > 0")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")


@dataclass
class _Pending:
    obs: Observation
    future: asyncio.Future
    t0: float = field(default_factory=time.perf_counter)


class PolicyServer:
    def __init__(self, policy, cfg: ServeConfig | None = None):
        _require_aiohttp()
        self.policy = policy.eval()
        self.cfg = cfg or ServeConfig()
        self.cfg.validate()
        c = policy.config
        self.image_size, self.state_dim = c.image_size, policy.state_dim
        self.counters = {"requests": 0, "errors": 0, "rejected_busy": 0, "batches": 0, "batched_requests": 0}
        self.queue: asyncio.Queue | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ---- metadata ----------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        c = self.policy.config
        return {
            "policy": self.policy.name, "image_shape": [3, c.image_size, c.image_size],
            "image_dtype": "uint8 (0..255) or float32 in [0, 1]", "state_dim": self.state_dim,
            "action_dim": c.action_dim, "chunk_size": c.chunk_size, "n_action_steps": c.n_action_steps,
            "context_length": c.context_length, "normalization": self.policy.stats,
            "max_batch": self.cfg.max_batch, "max_wait_ms": self.cfg.max_wait_ms, "max_queue": self.cfg.max_queue,
            "max_payload_mb": self.cfg.max_payload_mb, "stats": self.stats(),
        }

    def stats(self) -> dict[str, Any]:
        b = self.counters["batches"]
        return {**self.counters, "mean_batch_size": self.counters["batched_requests"] / b if b else 0.0}

    # ---- batching ----------------------------------------------------------------------------
    async def _submit(self, obs: Observation) -> list:
        loop = asyncio.get_running_loop()
        item = _Pending(obs, loop.create_future())
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.counters["rejected_busy"] += 1
            raise RequestError("server busy: the request queue is full, retry later", status=503) from None
        return await item.future

    def _run_batch(self, items: list[_Pending]) -> np.ndarray:
        batch = {OBS_IMAGE: torch.from_numpy(np.stack([i.obs.image for i in items])),
                 TASK: [i.obs.instruction for i in items]}
        if self.state_dim:
            batch[OBS_STATE] = torch.from_numpy(np.stack([i.obs.state for i in items]))
        with torch.inference_mode():
            return self.policy.predict_action_chunk(batch).float().cpu().numpy()

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            deadline = loop.time() + self.cfg.max_wait_ms / 1000
            while len(items) < self.cfg.max_batch:
                if not self.queue.empty():  # whatever is already waiting joins at once
                    items.append(self.queue.get_nowait())
                    continue
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            items = [i for i in items if not i.future.done()]  # drop requests whose client went away
            if items:
                await self._infer(items)

    async def _infer(self, items: list[_Pending]) -> None:
        """Run one batch in the inference thread and resolve every request's future; never raises."""
        loop = asyncio.get_running_loop()
        try:
            actions = await loop.run_in_executor(self._executor, self._run_batch, items)
            if len(actions) != len(items):
                raise RuntimeError(f"{len(actions)} action chunks for {len(items)} requests")
        except TinyVLAError as e:  # the policy's own input checks (DataError): find the culprit(s) alone
            if len(items) > 1:
                for i in items:
                    await self._infer([i])
                return
            self._fail(items, RequestError(str(e), status=400))
            return
        except Exception as e:  # noqa: BLE001 - never let one bad batch stop the server
            self._fail(items, RequestError(f"inference failed: {type(e).__name__}: {e}", status=500))
            return
        self.counters["batches"] += 1
        self.counters["batched_requests"] += len(items)
        for i, a in zip(items, actions):
            if not i.future.done():
                i.future.set_result(a.tolist())

    @staticmethod
    def _fail(items: list[_Pending], error: RequestError) -> None:
        for i in items:
            if not i.future.done():
                i.future.set_exception(error)

    # ---- HTTP / WebSocket ----------------------------------------------------------------------
    def _authorised(self, request) -> bool:
        if not self.cfg.token:
            return True
        header = request.headers.get("Authorization", "")
        expected = self.cfg.token.encode()
        return (hmac.compare_digest(header.encode(), b"Bearer " + expected)
                or hmac.compare_digest(request.query.get("token", "").encode(), expected))

    def _reply(self, actions: list, t0: float) -> dict:
        return {"actions": actions, "chunk_size": len(actions), "action_dim": len(actions[0]),
                "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}

    async def _act(self, msg: object, t0: float) -> dict:
        self.counters["requests"] += 1
        obs = decode_observation(msg, image_size=self.image_size, state_dim=self.state_dim)
        return self._reply(await self._submit(obs), t0)

    def build_app(self):
        from aiohttp import WSMsgType, web

        max_bytes = int(self.cfg.max_payload_mb * 1024 * 1024)

        def error(status: int, message: str):
            self.counters["errors"] += 1
            return web.json_response({"error": message}, status=status)

        @web.middleware
        async def guard(request, handler):
            if request.path != "/health" and not self._authorised(request):
                return error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
            try:
                return await handler(request)
            except web.HTTPRequestEntityTooLarge:
                return error(413, f"payload larger than {self.cfg.max_payload_mb} MB")
            except web.HTTPException as e:  # 404 unknown path, 405 wrong method: JSON like every other error
                if e.status < 400:
                    raise
                return error(e.status, f"{e.reason}: {request.method} {request.path} "
                                       "(endpoints: GET /health, GET /metadata, POST /act, GET /ws)")
            except Exception as e:  # noqa: BLE001 - a bug must not take the server down
                return error(500, f"internal error: {e}")

        async def health(request):
            return web.json_response({"status": "ok", **self.stats()})

        async def metadata(request):
            return web.json_response(self.metadata())

        async def act(request):
            t0 = time.perf_counter()
            if request.content_length is not None and request.content_length > max_bytes:
                return error(413, f"payload larger than {self.cfg.max_payload_mb} MB")
            try:
                body = await request.read()
                msg = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return error(400, "the body is not valid JSON")
            except RecursionError:
                return error(400, "the JSON body is nested too deeply")
            try:
                return web.json_response(await self._act(msg, t0))
            except RequestError as e:
                return error(e.status, str(e))

        async def ws(request):
            import msgpack

            sock = web.WebSocketResponse(max_msg_size=max_bytes)  # a bigger frame closes with code 1009
            await sock.prepare(request)
            send_lock, tasks = asyncio.Lock(), set()

            async def answer(msg: object, t0: float) -> None:
                rid = msg.get("id") if isinstance(msg, dict) else None
                try:
                    reply = await self._act(msg, t0)
                except RequestError as e:
                    self.counters["errors"] += 1
                    reply = {"error": str(e), "status": e.status}
                except Exception as e:  # noqa: BLE001 - a bug must not drop the connection
                    self.counters["errors"] += 1
                    reply = {"error": f"internal error: {e}", "status": 500}
                if rid is not None:
                    reply["id"] = rid
                async with send_lock:
                    if not sock.closed:
                        await sock.send_bytes(msgpack.packb(reply))

            async for frame in sock:
                t0 = time.perf_counter()
                if frame.type == WSMsgType.ERROR:
                    break
                if frame.type != WSMsgType.BINARY:
                    self.counters["errors"] += 1
                    async with send_lock:
                        await sock.send_bytes(msgpack.packb({"error": "send binary msgpack frames", "status": 400}))
                    continue
                try:
                    msg = msgpack.unpackb(frame.data, raw=False)
                except (ValueError, TypeError):  # msgpack's errors subclass ValueError
                    self.counters["errors"] += 1
                    async with send_lock:
                        await sock.send_bytes(msgpack.packb({"error": "the frame is not valid msgpack", "status": 400}))
                    continue
                if isinstance(msg, dict) and "id" in msg:  # tagged: answer concurrently so requests batch
                    task = asyncio.create_task(answer(msg, t0))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:  # untagged: one at a time, replies in order
                    await answer(msg, t0)
            for task in list(tasks):
                task.cancel()
            return sock

        async def start_worker(app):
            self.queue = asyncio.Queue(self.cfg.max_queue)
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="tinyvla-infer")  # one inference at a time
            self._worker_task = asyncio.create_task(self._worker())

        async def stop_worker(app):
            self._worker_task.cancel()
            self._executor.shutdown(wait=False)

        app = web.Application(middlewares=[guard], client_max_size=max_bytes)
        app.router.add_get("/health", health)
        app.router.add_get("/metadata", metadata)
        app.router.add_post("/act", act)
        app.router.add_get("/ws", ws)
        app.on_startup.append(start_worker)
        app.on_cleanup.append(stop_worker)
        return app

    # ---- running -------------------------------------------------------------------------------
    async def _start_site(self, port: int):
        """Bind and start; -> (runner, actual port). A port that cannot be bound is a ConfigError."""
        from aiohttp import web

        runner = web.AppRunner(self.build_app(), handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.cfg.host, port).start()
        except OSError as e:
            await runner.cleanup()
            raise ConfigError(f"cannot listen on {self.cfg.host}:{port}: {e.strerror or e}") from None
        return runner, runner.addresses[0][1]

    def serve_forever(self) -> None:
        """Serve until Ctrl-C; prints the URL once the port is bound."""

        async def main():
            runner, port = await self._start_site(self.cfg.port)
            print(f"serving {self.policy.name} on http://{self.cfg.host}:{port} (POST /act, WS /ws, GET /health, "
                  f"/metadata){' with a bearer token' if self.cfg.token else ''}; Ctrl-C stops", flush=True)
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError, RuntimeError):  # SIGTERM: a clean stop, like Ctrl-C
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            try:
                await stop.wait()
            finally:
                await runner.cleanup()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
        print(f"stopped after {self.counters['requests']} requests", flush=True)

    def start_background(self) -> BackgroundServer:
        """Run in a daemon thread with its own event loop (tests, benchmarks); `port` 0 picks a free port."""
        return BackgroundServer(self)


class BackgroundServer:
    """A PolicyServer on a background thread: `.url`, `.stop()`, usable as a context manager."""

    def __init__(self, server: PolicyServer):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tinyvla-serve")
        self.thread.start()
        try:
            self.runner, port = asyncio.run_coroutine_threadsafe(server._start_site(server.cfg.port), self.loop).result(30)
        except BaseException:
            self._stop_loop()
            raise
        self.url = f"http://{server.cfg.host}:{port}"

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.loop.is_running():
            self.loop.close()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self._stop_loop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def load_for_serving(checkpoint: str, *, device: str = "auto", mode: str = "eager", precision: str = "auto",
                     max_batch: int = 32):
    """The checkpoint as the server runs it: on `device`, in `mode` (eager, onnx, onnx-int8 on the CPU;
    compile / cudagraph on a GPU with batch buckets 1, 2, 4, ... up to `max_batch`)."""
    from tinyvla.bench import make_runner
    from tinyvla.policies.base import Policy
    from tinyvla.utils import resolve_device

    policy = Policy.from_pretrained(checkpoint, device=resolve_device(device))
    return make_runner(policy, mode, precision, max_batch=max_batch)
