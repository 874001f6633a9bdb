"""The wire format between the grader and a student's sandbox: JSON plus raw tensor bytes.

Nothing here can run code while decoding (no pickle, no ``torch.load``): a message is a JSON
document describing plain values, and tensors are rebuilt from their raw bytes with
``torch.frombuffer`` after their dtype, shape and size have been checked. Anything else is
rejected with ``ProtocolError``. Values: None, bool, int, float, str, tuples, lists, dicts with
string keys, tensors (dense, strided) and the core's ``Case`` and ``Outcome``.

A message on a file descriptor is a 16-byte header (JSON length, blob length) followed by the
JSON and the blob; ``read_message`` enforces a deadline and a size cap, so a sandbox that stops
half-way through a message or announces a huge one cannot stall or flood the grader.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from typing import Any

import torch

HEADER = struct.Struct("!QQ")  # JSON length, blob length

DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.bool,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
    )
}


class ProtocolError(Exception):
    """A message that is not in the wire format (malformed, too large, or cut short)."""


class ChannelClosed(ProtocolError):
    """The other end closed the channel (the sandbox died)."""


class Deadline(ProtocolError):
    """No complete message arrived before the deadline."""


def encode(value: Any) -> bytes:
    """Serialise ``value`` (plain data, tensors, cases, outcomes) into one message."""
    blobs: list[bytes] = []
    offset = [0]

    def plain(item: Any) -> Any:
        if item is None or isinstance(item, bool | int | str):
            return item
        if isinstance(item, float):
            return item if math.isfinite(item) else {"float": repr(item)}
        if isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
            blobs.append(raw)
            start, offset[0] = offset[0], offset[0] + len(raw)
            dtype = str(tensor.dtype).removeprefix("torch.")
            return {"tensor": [dtype, list(tensor.shape), start, len(raw)]}
        if isinstance(item, tuple):
            return {"tuple": [plain(v) for v in item]}
        if isinstance(item, list):
            return {"list": [plain(v) for v in item]}
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise TypeError("only dicts with string keys can be sent")
            return {"dict": {key: plain(v) for key, v in item.items()}}
        if hasattr(item, "__dataclass_fields__") and type(item).__name__ in _RECORDS:
            fields = {name: plain(getattr(item, name)) for name in item.__dataclass_fields__}
            return {type(item).__name__: fields}
        raise TypeError(f"cannot send a {type(item).__name__}")

    document = json.dumps(plain(value), separators=(",", ":")).encode()
    blob = b"".join(blobs)
    return HEADER.pack(len(document), len(blob)) + document + blob


def decode(message: bytes, records: dict[str, type] | None = None) -> Any:
    """Rebuild a value from ``encode``'s bytes; ``records`` maps ``Case``/``Outcome`` to the
    classes to build them with (defaults to ``attn_course.checks.core``'s)."""
    if len(message) < HEADER.size:
        raise ProtocolError("message shorter than its header")
    json_len, blob_len = HEADER.unpack_from(message)
    if HEADER.size + json_len + blob_len != len(message):
        raise ProtocolError("message length does not match its header")
    try:
        document = json.loads(message[HEADER.size : HEADER.size + json_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"malformed JSON: {error}") from None
    blob = memoryview(message)[HEADER.size + json_len :]
    records = records if records is not None else _core_records()

    def value(item: Any, depth: int = 0) -> Any:
        if depth > 64:
            raise ProtocolError("nested too deeply")
        if item is None or isinstance(item, bool | int | float | str):
            return item
        if not isinstance(item, dict) or len(item) != 1:
            raise ProtocolError("unknown value")
        ((tag, body),) = item.items()
        if tag == "float" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "tensor":
            return _tensor(body, blob)
        if tag in ("tuple", "list") and isinstance(body, list):
            items = [value(v, depth + 1) for v in body]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict" and isinstance(body, dict):
            return {key: value(v, depth + 1) for key, v in body.items()}
        if tag in _RECORDS and isinstance(body, dict) and set(body) <= set(_RECORDS[tag]):
            return records[tag](**{key: value(v, depth + 1) for key, v in body.items()})
        raise ProtocolError(f"unknown value tag {tag!r}")

    return value(document)


_RECORDS = {
    "Case": ("label", "args", "kwargs", "init_args", "state_dict"),
    "Outcome": (
        *("output", "error", "forbidden", "largest", "widest_reduction", "exported"),
        *("modified", "unset", "unstable", "training_error", "allocated"),
    ),
}


def _core_records() -> dict[str, type]:
    from attn_course.checks.core import Case, Outcome

    return {"Case": Case, "Outcome": Outcome}


def _tensor(body: Any, blob: memoryview) -> torch.Tensor:
    if not (isinstance(body, list) and len(body) == 4):
        raise ProtocolError("malformed tensor")
    dtype_name, shape, start, nbytes = body
    dtype = DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None:
        raise ProtocolError(f"dtype {dtype_name!r} not accepted")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError("malformed tensor shape")
    in_range = type(start) is int and type(nbytes) is int and 0 <= start <= start + nbytes
    if not (in_range and start + nbytes <= len(blob)):
        raise ProtocolError("tensor bytes out of range")
    if math.prod(shape) * dtype.itemsize != nbytes:
        raise ProtocolError("tensor size does not match its shape")
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(blob[start : start + nbytes]), dtype=dtype).reshape(shape)


def write_message(fd: int, value: Any, timeout: float | None = None) -> None:
    """Send ``value`` on ``fd``; raise ``Deadline`` if the reader has not taken it all within
    ``timeout`` seconds (then ``fd`` must be non-blocking)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    data = memoryview(encode(value))
    while data:
        if deadline is not None and not _ready(fd, select.POLLOUT, deadline - time.monotonic()):
            raise Deadline("the reader did not take the message before the deadline")
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            continue


def read_message(
    fd: int,
    timeout: float | None = None,
    max_bytes: int = 1 << 30,
    records=None,
    max_json: int | None = None,
) -> Any:
    """Receive one value from ``fd``; raise ``Deadline`` if it is not complete within
    ``timeout`` seconds, ``ChannelClosed`` at end of file, ``ProtocolError`` if it is
    larger than ``max_bytes`` (its JSON part larger than ``max_json``) or malformed. The
    sizes are checked from the header, before anything else is read or parsed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    header = _read_exactly(fd, HEADER.size, deadline)
    json_len, blob_len = HEADER.unpack(header)
    if json_len + blob_len > max_bytes:
        raise ProtocolError(f"message of {json_len + blob_len} bytes exceeds {max_bytes}")
    if max_json is not None and json_len > max_json:
        raise ProtocolError(f"a JSON part of {json_len} bytes exceeds {max_json}")
    return decode(header + _read_exactly(fd, json_len + blob_len, deadline), records)


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None and not _ready(fd, select.POLLIN, deadline - time.monotonic()):
            raise Deadline("no complete message before the deadline")
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("the sandbox closed its channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _ready(fd: int, events: int, seconds: float) -> bool:
    """Whether ``fd`` is ready (or closed at the other end) within ``seconds``."""
    if seconds <= 0:
        return False
    poller = select.poll()
    poller.register(fd, events | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(math.ceil(seconds * 1000)))
