"""JSON from the network, parsed within bounds of size and nesting.

py-evm and py_ecc raise Python's recursion limit to 100,000 when they are
imported, so the C JSON parser, which only stops at that limit, overflows the
thread's C stack on a body of 100,000 nested `[` (a segfault that takes the
whole server down). `loads_bounded` measures the nesting first, without
recursing, and refuses anything deeper than `MAX_DEPTH`; no legitimate request
to our servers nests more than a few levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "JsonRefused", "loads_bounded", "nesting_depth"]

MAX_BODY_BYTES = 5 * 1024 * 1024  # geth's limit on a JSON-RPC request body
MAX_DEPTH = 64

# A JSON string, unrolled ("normal* (special normal*)*") so long strings match in one pass.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class JsonRefused(ValueError):
    """A body that is not parsed: too large, nested too deeply, or not JSON."""


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw`, brackets inside strings ignored."""
    outside = _STRING.sub(b"", raw)
    if not outside:
        return 0
    steps = _OPEN[np.frombuffer(outside, dtype=np.uint8)].astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def loads_bounded(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that refuses a body over `max_bytes` or nested over `max_depth`."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise JsonRefused(f"the body is {len(data)} bytes, at most {max_bytes}")
    depth = nesting_depth(data)
    if depth > max_depth:
        raise JsonRefused(f"the JSON nests {depth} levels deep, at most {max_depth}")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise JsonRefused(f"the body is not JSON: {exc}") from None
