"""`PolicyClient`: talk to `tinyvla serve` with the same calls as a local Policy.

`predict_action_chunk(batch)` takes the batch dict a Policy takes (OBS_IMAGE, TASK, optional OBS_STATE)
and returns a (b, t, a) tensor; the b observations go out as concurrent requests, so the server batches
them. `select_action` / `reset` keep the Policy's action-queue semantics, so `closed_loop` runs unchanged.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.errors import ConfigError, DataError, TinyVLAError


class ServerError(TinyVLAError):
    """The server refused or failed a request (its message and status are kept)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def encode_observation(image: torch.Tensor, instruction: str, state: torch.Tensor | None, binary: bool) -> dict:
    """One observation as a request: uint8 image bytes (msgpack) or base64 (JSON)."""
    if image.dtype != torch.uint8:
        image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8)
    raw = image.contiguous().cpu().numpy().tobytes()
    if binary:
        msg = {"image": raw}
    else:
        import base64

        msg = {"image": base64.b64encode(raw).decode(), "image_encoding": "base64-uint8"}
    msg["instruction"] = instruction
    if state is not None:
        msg["state"] = [float(x) for x in state.reshape(-1)]
    return msg


class PolicyClient:
    def __init__(self, url: str, token: str | None = None, transport: str = "http", timeout: float = 30.0,
                 max_parallel: int = 64):
        if transport not in ("http", "ws"):
            raise ConfigError(f"transport must be http or ws, got {transport!r}")
        self.url, self.token, self.transport, self.timeout = url.rstrip("/"), token, transport, timeout
        self._pool = ThreadPoolExecutor(max_parallel)
        self._queue: deque[torch.Tensor] = deque()
        self._ws_loop = None
        self._ws_start_lock = threading.Lock()
        self._meta = self.metadata()
        self.name = f"remote:{self._meta['policy']}"
        self.device = torch.device("cpu")

    # ---- plumbing ------------------------------------------------------------------------------
    def _headers(self) -> dict:
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def _http(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", e.reason)
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                message = str(e.reason)
            raise ServerError(f"server answered {e.code}: {message}", e.code) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServerError(f"cannot reach the policy server at {self.url}: {reason}") from None

    def health(self) -> dict:
        return self._http("GET", "/health")

    def metadata(self) -> dict:
        return self._http("GET", "/metadata")

    @property
    def config(self):
        """Enough of a PolicyConfig for callers that read chunk/n_action_steps."""
        from types import SimpleNamespace

        m = self._meta
        return SimpleNamespace(chunk_size=m["chunk_size"], n_action_steps=m["n_action_steps"],
                               action_dim=m["action_dim"], image_size=m["image_shape"][-1])

    # ---- WebSocket: one connection, requests pipelined on a private event loop ---------------
    def _ws_start(self):
        import aiohttp

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()

        async def connect():
            session = aiohttp.ClientSession()
            url = self.url.replace("http", "ws", 1) + "/ws"
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            try:
                sock = await session.ws_connect(url, headers=headers, max_msg_size=0)
            except Exception:
                await session.close()
                raise
            return session, sock, asyncio.Lock()

        try:
            self._ws = asyncio.run_coroutine_threadsafe(connect(), loop).result(self.timeout)
        except Exception as e:
            loop.call_soon_threadsafe(loop.stop)
            raise ServerError(f"cannot open a WebSocket to {self.url}/ws: {e}") from None
        self._ws_loop = loop

    def _ws_call(self, msg: dict) -> dict:
        import msgpack

        with self._ws_start_lock:
            if self._ws_loop is None:
                self._ws_start()
        _, sock, lock = self._ws

        async def call():
            async with lock:  # one request in flight per connection keeps replies in order
                await sock.send_bytes(msgpack.packb(msg))
                frame = await sock.receive_bytes()
            return msgpack.unpackb(frame, raw=False)

        reply = asyncio.run_coroutine_threadsafe(call(), self._ws_loop).result(self.timeout)
        if "error" in reply:
            raise ServerError(f"server answered {reply.get('status', 0)}: {reply['error']}", reply.get("status", 0))
        return reply

    def close(self) -> None:
        if self._ws_loop is not None:
            session, sock, _ = self._ws
            asyncio.run_coroutine_threadsafe(sock.close(), self._ws_loop).result(5)
            asyncio.run_coroutine_threadsafe(session.close(), self._ws_loop).result(5)
            self._ws_loop.call_soon_threadsafe(self._ws_loop.stop)
            self._ws_loop = None
        self._pool.shutdown(wait=False)

    # ---- the Policy-like API -----------------------------------------------------------------
    def act(self, image: torch.Tensor, instruction: str, state: torch.Tensor | None = None) -> np.ndarray:
        """One observation -> actions (t, a)."""
        binary = self.transport == "ws"
        msg = encode_observation(image, instruction, state if self._meta["state_dim"] else None, binary)
        reply = self._ws_call(msg) if binary else self._http("POST", "/act", msg)
        return np.asarray(reply["actions"], dtype=np.float32)

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        images, tasks = batch.get(OBS_IMAGE), batch.get(TASK)
        if images is None or tasks is None:
            raise DataError(f"batch needs {OBS_IMAGE!r} and {TASK!r}")
        if isinstance(tasks, str):
            tasks = [tasks]
        states = batch.get(OBS_STATE)
        if len(tasks) != images.shape[0]:
            raise DataError(f"{len(tasks)} instructions for {images.shape[0]} images")
        jobs = [self._pool.submit(self.act, images[i], tasks[i], None if states is None else states[i])
                for i in range(images.shape[0])]
        return torch.from_numpy(np.stack([j.result() for j in jobs]))

    def select_action(self, batch: dict) -> torch.Tensor:
        if not self._queue:
            chunk = self.predict_action_chunk(batch)[:, : self._meta["n_action_steps"]]
            self._queue.extend(chunk.transpose(0, 1))
        return self._queue.popleft()

    def reset(self) -> None:
        self._queue.clear()

    def eval(self):
        return self
