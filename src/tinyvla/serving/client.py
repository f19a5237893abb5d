"""`PolicyClient`: talk to `tinyvla serve` with the same calls as a local Policy.

`predict_action_chunk(batch)` takes the batch dict a Policy takes (OBS_IMAGE, TASK, optional OBS_STATE)
and returns a (b, t, a) tensor; the b observations go out as concurrent requests, so the server batches
them (HTTP: a thread pool; WebSocket: pipelined on one connection, replies matched by "id").
`select_action` / `reset` keep the Policy's action-queue semantics, so `closed_loop` runs unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import http.client
import itertools
import json
import threading
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import torch

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.errors import ConfigError, DataError, TinyVLAError


class ServerError(TinyVLAError):
    """The server refused or failed a request, or cannot be reached (status 0)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def encode_observation(image, instruction: str, state=None, binary: bool = False) -> dict:
    """One observation (3, H, W) as a request body.

    uint8 images travel as raw bytes (msgpack) or base64 of those bytes (JSON); float images in [0, 1]
    travel as nested lists, so the server sees exactly the values a local policy would."""
    image = torch.as_tensor(image)
    if image.dtype == torch.uint8:
        raw = image.contiguous().cpu().numpy().tobytes()
        msg = {"image": raw} if binary else {"image": base64.b64encode(raw).decode(), "image_encoding": "base64-uint8"}
    else:
        msg = {"image": image.detach().float().cpu().tolist()}
    msg["instruction"] = instruction
    if state is not None:
        msg["state"] = [float(x) for x in torch.as_tensor(state).reshape(-1)]
    return msg


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.startswith(("ws://", "wss://")):
        url = "http" + url[2:]
        url = url.removesuffix("/ws")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"server URL must start with http:// or https:// (e.g. http://127.0.0.1:8000), got {url!r}")
    return url


class _WebSocket:
    """One msgpack WebSocket connection on a private event loop; many requests in flight, matched by id."""

    def __init__(self, url: str, token: str | None, timeout: float):
        import aiohttp

        self.url = url.replace("http", "ws", 1) + "/ws"
        self.timeout = timeout
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count()
        self.dead: str | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tinyvla-ws-client")
        self.thread.start()

        async def connect():
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=timeout))
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                sock = await session.ws_connect(self.url, headers=headers, max_msg_size=0, heartbeat=None)
            except BaseException:
                await session.close()
                raise
            return session, sock, asyncio.Lock(), asyncio.Event()

        try:
            self.session, self.sock, self.send_lock, self.closed = self._run(connect(), timeout)
        except aiohttp.WSServerHandshakeError as e:
            self._stop_loop()
            raise ServerError(f"server refused the WebSocket ({e.status}: {e.message})", e.status) from None
        except Exception as e:  # noqa: BLE001 - refused, reset, timeout, DNS: one message for all
            self._stop_loop()
            raise ServerError(f"cannot open a WebSocket to {self.url}: {e or type(e).__name__}") from None
        self.reader = asyncio.run_coroutine_threadsafe(self._read(), self.loop)

    def _run(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _read(self) -> None:
        import aiohttp
        import msgpack

        reason = "the server closed the connection"
        try:
            async for frame in self.sock:
                if frame.type == aiohttp.WSMsgType.BINARY:
                    try:
                        reply = msgpack.unpackb(frame.data, raw=False)
                    except (ValueError, TypeError):  # msgpack's errors subclass ValueError
                        reply = None
                    if not isinstance(reply, dict):
                        continue  # not a reply we can match to a request
                    rid = reply.pop("id", None)
                    if rid is None and len(self.pending) == 1:
                        rid = next(iter(self.pending))
                    fut = self.pending.pop(rid, None)
                    if fut is not None and not fut.done():
                        fut.set_result(reply)
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    reason = f"WebSocket error: {self.sock.exception()}"
                    break
            if self.sock.close_code not in (None, 1000):
                reason += f" (code {self.sock.close_code}{': message too big' if self.sock.close_code == 1009 else ''})"
        except Exception as e:  # noqa: BLE001 - any transport failure ends this connection
            reason = f"WebSocket failed: {e}"
        finally:
            self.dead = reason
            self.closed.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ServerError(reason))
            self.pending.clear()

    async def _call(self, msg: dict) -> dict:
        import msgpack

        if self.dead:
            raise ServerError(self.dead)
        rid = next(self.ids)
        fut = self.loop.create_future()
        self.pending[rid] = fut
        try:
            try:
                async with self.send_lock:
                    await self.sock.send_bytes(msgpack.packb({**msg, "id": rid}))
            except Exception as e:  # noqa: BLE001 - the server dropped the connection: say why if it told us
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.closed.wait(), 1.0)
                raise ServerError(self.dead or f"WebSocket send failed: {e or type(e).__name__}") from None
            return await fut
        finally:
            self.pending.pop(rid, None)

    def call(self, msg: dict) -> dict:
        cf = asyncio.run_coroutine_threadsafe(self._call(msg), self.loop)
        try:
            return cf.result(self.timeout)
        except concurrent.futures.TimeoutError:
            cf.cancel()
            raise ServerError(f"no reply from {self.url} within {self.timeout:g} s") from None
        except ServerError:
            raise
        except Exception as e:  # noqa: BLE001 - e.g. sending on a connection the server dropped
            raise ServerError(f"WebSocket request failed: {e or type(e).__name__}") from None

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()

    def close(self) -> None:
        async def shutdown():
            await self.sock.close()
            await self.session.close()

        with contextlib.suppress(Exception):  # best effort on the way out
            self._run(shutdown(), 5)
            self.reader.result(5)
        self._stop_loop()


class PolicyClient:
    """A remote policy: `predict_action_chunk`, `select_action`, `reset`, like `tinyvla.policies.base.Policy`."""

    def __init__(self, url: str, token: str | None = None, transport: str = "http", timeout: float = 30.0,
                 max_parallel: int = 64):
        if transport not in ("http", "ws"):
            raise ConfigError(f"transport must be http or ws, got {transport!r}")
        if transport == "ws":
            try:
                import aiohttp  # noqa: F401
                import msgpack  # noqa: F401
            except ImportError:
                raise ConfigError("the WebSocket transport needs aiohttp and msgpack: pip install 'tinyvla[serve]'") from None
        self.url, self.token, self.transport, self.timeout = _normalise_url(url), token or None, transport, timeout
        self._pool = ThreadPoolExecutor(max(1, max_parallel), thread_name_prefix="tinyvla-client")
        self._queue: deque[torch.Tensor] = deque()
        self._ws: _WebSocket | None = None
        self._ws_lock = threading.Lock()
        self._meta = self.metadata()
        self.name = f"remote:{self._meta.get('policy', '?')}"
        self.device = torch.device("cpu")

    # ---- HTTP ----------------------------------------------------------------------------------
    def _headers(self) -> dict:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def _http(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            self._check_size(len(data))
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read()
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error") or e.reason
            except Exception:  # noqa: BLE001 - not one of our JSON error bodies
                message = e.reason
            raise ServerError(f"server answered {e.code}: {message}", e.code) from None
        except urllib.error.URLError as e:
            raise ServerError(f"cannot reach the policy server at {self.url}: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # reset, timeout, garbled reply
            raise ServerError(f"cannot reach the policy server at {self.url}: {e or type(e).__name__}") from None
        try:
            reply = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServerError(f"{self.url}{path} did not answer JSON: is it a tinyvla server?") from None
        if not isinstance(reply, dict):
            raise ServerError(f"{self.url}{path} answered an unexpected {type(reply).__name__}")
        return reply

    def health(self) -> dict:
        return self._http("GET", "/health")

    def metadata(self) -> dict:
        meta = self._http("GET", "/metadata")
        missing = [k for k in ("image_shape", "action_dim", "chunk_size", "n_action_steps", "state_dim") if k not in meta]
        if missing:
            raise ServerError(f"{self.url}/metadata lacks {', '.join(missing)}: is it a tinyvla server?")
        return meta

    @property
    def config(self) -> SimpleNamespace:
        """Enough of a PolicyConfig for callers that read chunk/n_action_steps/image size."""
        m = self._meta
        return SimpleNamespace(chunk_size=m["chunk_size"], n_action_steps=m["n_action_steps"], action_dim=m["action_dim"],
                               image_size=m["image_shape"][-1], context_length=m.get("context_length"))

    @property
    def stats(self) -> dict:
        return self._meta.get("normalization", {})

    @property
    def state_dim(self) -> int:
        return int(self._meta["state_dim"])

    # ---- WebSocket -----------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the WebSocket now (it opens on the first request otherwise); a no-op over HTTP."""
        if self.transport == "ws":
            self._socket()

    def _socket(self) -> _WebSocket:
        with self._ws_lock:  # (re)connect lazily; a dropped connection is replaced on the next call
            if self._ws is None or self._ws.dead:
                if self._ws is not None:
                    self._ws.close()
                self._ws = _WebSocket(self.url, self.token, self.timeout)
            return self._ws

    def _check_size(self, nbytes: int) -> None:
        """Refuse here what the server would refuse (413), with a clear message instead of a dropped connection."""
        limit = getattr(self, "_meta", {}).get("max_payload_mb")
        if limit and nbytes > limit * 1024 * 1024:
            raise ServerError(f"request of {nbytes / 2**20:.2f} MB exceeds the server's --max-payload-mb {limit:g}", 413)

    def _ws_call(self, msg: dict) -> dict:
        import msgpack

        self._check_size(len(msgpack.packb(msg)) + 16)
        reply = self._socket().call(msg)
        if "error" in reply:
            status = int(reply.get("status") or 0)
            raise ServerError(f"server answered {status}: {reply['error']}", status)
        return reply

    def close(self) -> None:
        with self._ws_lock:
            if self._ws is not None:
                self._ws.close()
                self._ws = None
        self._pool.shutdown(wait=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the Policy-like API -----------------------------------------------------------------
    def act(self, image, instruction: str, state=None) -> np.ndarray:
        """One observation: image (3, H, W) uint8 or float in [0, 1], instruction, state (s,) -> actions (t, a)."""
        binary = self.transport == "ws"
        msg = encode_observation(image, instruction, state if self.state_dim else None, binary)
        reply = self._ws_call(msg) if binary else self._http("POST", "/act", msg)
        try:
            return np.asarray(reply["actions"], dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            raise ServerError(f"the server's reply has no usable 'actions' (keys: {sorted(reply)})") from None

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        """batch {OBS_IMAGE: (b, 3, H, W), TASK: list[str], OBS_STATE: (b, s)} -> actions (b, t, a) float32."""
        if OBS_IMAGE not in batch or TASK not in batch:
            raise DataError(f"batch needs {OBS_IMAGE!r} and {TASK!r}")
        images, tasks, states = torch.as_tensor(batch[OBS_IMAGE]), batch[TASK], batch.get(OBS_STATE)
        if isinstance(tasks, str):
            tasks = [tasks]
        if images.ndim != 4:
            raise DataError(f"{OBS_IMAGE} must have shape (batch, 3, H, W), got {tuple(images.shape)}")
        if len(tasks) != images.shape[0]:
            raise DataError(f"{len(tasks)} instructions for {images.shape[0]} images")
        if self.state_dim and states is None:
            raise DataError(f"batch lacks {OBS_STATE!r}: the served policy reads a robot state of size {self.state_dim}")
        if images.shape[0] == 1:
            out = [self.act(images[0], tasks[0], None if states is None else states[0])]
        else:
            jobs = [self._pool.submit(self.act, images[i], tasks[i], None if states is None else states[i])
                    for i in range(images.shape[0])]
            out = [j.result() for j in jobs]
        return torch.from_numpy(np.stack(out))

    @torch.no_grad()
    def select_action(self, batch: dict) -> torch.Tensor:
        """-> one action (b, a); re-plans every `n_action_steps` steps from a fresh chunk (as Policy does)."""
        if not self._queue:
            chunk = self.predict_action_chunk(batch)[:, : self._meta["n_action_steps"]]  # (b, t, a)
            self._queue.extend(chunk.transpose(0, 1))
        return self._queue.popleft()

    def reset(self) -> None:
        self._queue.clear()

    def eval(self):
        return self
