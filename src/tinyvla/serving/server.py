"""An aiohttp policy server with dynamic batching.

Requests from all clients go into one bounded queue; a single worker takes up to `max_batch` of them,
waiting at most `max_wait_ms` after the first, runs ONE batched `predict_action_chunk` in a thread
(so the event loop keeps accepting requests), and answers each. A full queue answers 503 at once:
back-pressure instead of unbounded latency.

Endpoints: GET /health, GET /metadata, POST /act (JSON), GET /ws (WebSocket, msgpack frames).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
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
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            try:
                actions = await loop.run_in_executor(None, self._run_batch, items)
            except TinyVLAError as e:  # e.g. the policy's own input checks
                for i in items:
                    if not i.future.done():
                        i.future.set_exception(RequestError(str(e), status=400))
                continue
            except Exception as e:  # never let one bad batch stop the server
                for i in items:
                    if not i.future.done():
                        i.future.set_exception(RequestError(f"inference failed: {e}", status=500))
                continue
            self.counters["batches"] += 1
            self.counters["batched_requests"] += len(items)
            for i, a in zip(items, actions):
                if not i.future.done():
                    i.future.set_result(a.tolist())

    # ---- HTTP / WebSocket ----------------------------------------------------------------------
    def _authorised(self, request) -> bool:
        if not self.cfg.token:
            return True
        header = request.headers.get("Authorization", "")
        return header == f"Bearer {self.cfg.token}" or request.query.get("token") == self.cfg.token

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
            except web.HTTPException:
                raise
            except Exception as e:  # a bug must not take the server down
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
            try:
                return web.json_response(await self._act(msg, t0))
            except RequestError as e:
                return error(e.status, str(e))

        async def ws(request):
            import msgpack

            sock = web.WebSocketResponse(max_msg_size=max_bytes)
            await sock.prepare(request)
            async for frame in sock:
                t0 = time.perf_counter()
                if frame.type == WSMsgType.ERROR:
                    break
                if frame.type != WSMsgType.BINARY:
                    self.counters["errors"] += 1
                    await sock.send_bytes(msgpack.packb({"error": "send binary msgpack frames", "status": 400}))
                    continue
                try:
                    try:
                        msg = msgpack.unpackb(frame.data, raw=False)
                    except Exception:
                        raise RequestError("the frame is not valid msgpack") from None
                    reply = await self._act(msg, t0)
                except RequestError as e:
                    self.counters["errors"] += 1
                    reply = {"error": str(e), "status": e.status}
                await sock.send_bytes(msgpack.packb(reply))
            return sock

        async def start_worker(app):
            self.queue = asyncio.Queue(self.cfg.max_queue)
            self._worker_task = asyncio.create_task(self._worker())

        async def stop_worker(app):
            self._worker_task.cancel()

        app = web.Application(middlewares=[guard], client_max_size=max_bytes)
        app.router.add_get("/health", health)
        app.router.add_get("/metadata", metadata)
        app.router.add_post("/act", act)
        app.router.add_get("/ws", ws)
        app.on_startup.append(start_worker)
        app.on_cleanup.append(stop_worker)
        return app

    # ---- running -------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        from aiohttp import web

        print(f"serving {self.policy.name} on http://{self.cfg.host}:{self.cfg.port} "
              f"(POST /act, WS /ws, GET /health, /metadata){' with a bearer token' if self.cfg.token else ''}")
        try:
            web.run_app(self.build_app(), host=self.cfg.host, port=self.cfg.port, print=None)
        except OSError as e:
            raise ConfigError(f"cannot listen on {self.cfg.host}:{self.cfg.port}: {e.strerror or e}") from None

    def start_background(self) -> "BackgroundServer":
        """Run in a daemon thread (tests, benchmarks); `port` 0 picks a free port."""
        return BackgroundServer(self)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    def __init__(self, server: PolicyServer):
        from aiohttp import web

        self.server = server
        if server.cfg.port == 0:
            server.cfg.port = free_port(server.cfg.host)
        self.url = f"http://{server.cfg.host}:{server.cfg.port}"
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start():
            self.runner = web.AppRunner(server.build_app())
            await self.runner.setup()
            await web.TCPSite(self.runner, server.cfg.host, server.cfg.port).start()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("the policy server did not start")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
