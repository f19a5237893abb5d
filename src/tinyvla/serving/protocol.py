"""Observation decoding and validation shared by the HTTP (JSON) and WebSocket (msgpack) endpoints.

A request is {"image": ..., "instruction": str, "state": [floats] (when the policy reads one)}.
"image" is a (3, H, W) array: a nested list (uint8 0..255 or floats in [0, 1]), raw bytes of a uint8
array (msgpack), or base64 of those bytes with "image_encoding": "base64-uint8" (JSON).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

import numpy as np


class RequestError(Exception):
    """A client mistake: reported with an HTTP status, never crashes the server."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Observation:
    image: np.ndarray  # float32 (3, H, W) in [0, 1]
    instruction: str
    state: np.ndarray | None  # float32 (s,)


def decode_observation(msg: object, *, image_size: int, state_dim: int) -> Observation:
    if not isinstance(msg, dict):
        raise RequestError("the request body must be an object with image, instruction (and state)")
    missing = [k for k in ("image", "instruction") if k not in msg]
    if state_dim and "state" not in msg:
        missing.append("state")
    if missing:
        raise RequestError(f"missing field(s): {', '.join(missing)}")
    shape = (3, image_size, image_size)
    raw = msg["image"]
    if isinstance(raw, str):
        if msg.get("image_encoding") != "base64-uint8":
            raise RequestError('a string image needs "image_encoding": "base64-uint8"')
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("image is not valid base64") from None
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) != math.prod(shape):
            raise RequestError(f"image bytes must be a uint8 array of shape {shape} ({math.prod(shape)} bytes), "
                               f"got {len(raw)} bytes")
        image = np.frombuffer(raw, dtype=np.uint8).reshape(shape).astype(np.float32) / 255.0
    elif isinstance(raw, list):
        try:
            arr = np.asarray(raw)
        except ValueError:
            raise RequestError(f"image must be a nested list of shape {shape}") from None
        if arr.shape != shape:
            raise RequestError(f"image must have shape {list(shape)}, got {list(arr.shape)}")
        if arr.dtype.kind in "iu":
            if arr.min() < 0 or arr.max() > 255:
                raise RequestError("integer image values must be in 0..255")
            image = arr.astype(np.float32) / 255.0
        elif arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise RequestError("image contains NaN or inf")
            if arr.min() < 0 or arr.max() > 1:
                raise RequestError("float image values must be in [0, 1]")
            image = arr.astype(np.float32)
        else:
            raise RequestError(f"image must hold numbers, got {arr.dtype}")
    else:
        raise RequestError("image must be a nested list, raw uint8 bytes or base64 text")
    instruction = msg["instruction"]
    if not isinstance(instruction, str) or not instruction.strip():
        raise RequestError("instruction must be a non-empty string")
    if len(instruction) > 2000:
        raise RequestError("instruction is longer than 2000 characters")
    state = None
    if state_dim:
        try:
            state = np.asarray(msg["state"], dtype=np.float32)
        except (TypeError, ValueError):
            raise RequestError(f"state must be a list of {state_dim} numbers") from None
        if state.shape != (state_dim,):
            raise RequestError(f"state must have {state_dim} values, got shape {list(state.shape)}")
        if not np.isfinite(state).all():
            raise RequestError("state contains NaN or inf")
    return Observation(image, instruction, state)
