"""The wire format: what goes in comes out, and nothing but data can come out."""

from __future__ import annotations

import os
import pickle
import struct

import pytest
import torch

from attn_course.checks.core import Case, Outcome
from attn_course.grader import codec


def test_round_trip_of_cases_and_outcomes():
    case = Case(
        "a case",
        (torch.randn(2, 3), torch.tensor([True, False])),
        {"dim": -1, "mask": None},
        init_args=(4, 2),
        state_dict={"w": torch.randn(4, 4, dtype=torch.float64)},
    )
    outcome = Outcome(
        output=(torch.arange(6).reshape(2, 3), [1.5, float("nan"), float("-inf")], "<Module>"),
        error=None,
        forbidden=("softmax",),
    )
    got_case, got_outcome = codec.decode(codec.encode([case, outcome]))
    assert got_case.label == case.label and got_case.kwargs == case.kwargs
    assert got_case.init_args == (4, 2)
    assert all(torch.equal(a, b) for a, b in zip(got_case.args, case.args, strict=True))
    assert torch.equal(got_case.state_dict["w"], case.state_dict["w"])
    tensor, numbers, text = got_outcome.output
    assert torch.equal(tensor, outcome.output[0]) and tensor.dtype == torch.int64
    assert numbers[0] == 1.5 and numbers[1] != numbers[1] and numbers[2] == float("-inf")
    assert (text, got_outcome.forbidden) == ("<Module>", ("softmax",))


@pytest.mark.parametrize(
    "tensor",
    [
        torch.zeros(0, 3),
        torch.tensor(2.5),
        torch.randn(3, 4)[:, 1],
        torch.ones(2, dtype=torch.bfloat16),
    ],
)
def test_unusual_tensors(tensor):
    decoded = codec.decode(codec.encode(tensor))
    assert decoded.shape == tensor.shape and decoded.dtype == tensor.dtype
    assert torch.equal(decoded, tensor)


def _message(document: bytes, blob: bytes = b"") -> bytes:
    return codec.HEADER.pack(len(document), len(blob)) + document + blob


@pytest.mark.parametrize(
    "message",
    [
        pickle.dumps(Outcome(output=1)),  # a pickle is not a message
        _message(b'{"tensor": ["object", [1], 0, 8]}', b"\0" * 8),  # unknown dtype
        _message(b'{"tensor": ["float32", [4], 0, 8]}', b"\0" * 8),  # size does not match
        _message(b'{"tensor": ["float32", [2], 4, 8]}', b"\0" * 8),  # bytes out of range
        _message(b'{"Evil": {}}'),  # unknown record
        _message(b'{"Outcome": {"output": 1, "__class__": 2}}'),  # unknown field
        _message(b"not json"),
        _message(b"1") + b"trailing",
    ],
)
def test_anything_else_is_rejected(message):
    with pytest.raises(codec.ProtocolError):
        codec.decode(message)


def test_unsendable_values_are_refused():
    with pytest.raises(TypeError):
        codec.encode(object())
    with pytest.raises(TypeError):
        codec.encode({1: "key not a string"})


def test_read_message_limits():
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, struct.pack("!QQ", 10, 0) + b"{")  # cut short
        with pytest.raises(codec.Deadline):
            codec.read_message(read_fd, timeout=0.2)
        os.write(write_fd, struct.pack("!QQ", 1 << 40, 0))  # announces a terabyte
        with pytest.raises(codec.ProtocolError):
            codec.read_message(read_fd, timeout=1, max_bytes=1 << 20)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with pytest.raises(codec.ChannelClosed):
        codec.read_message(read_fd, timeout=1)
    os.close(read_fd)
