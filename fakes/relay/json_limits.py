"""Bounds on the JSON the Relay's clients send: the request body and `task_args`.

Both are parsed by Python's C JSON decoder (FastAPI parses the body, the service
parses `task_args`), which recurses once per nesting level until it reaches the
recursion limit; py-evm raises that limit to 100,000 at import, so 100,000 nested
`[` overflow the thread's C stack and kill the whole process. Every client JSON
text is therefore measured with `hydrogen_harness.boundary.json_guard.nesting_depth` before anything
parses it, and refused past `MAX_DEPTH` levels (task args nest 4 deep at most).
"""

from __future__ import annotations

from hydrogen_harness.boundary.json_guard import MAX_DEPTH, nesting_depth

__all__ = ["MAX_DEPTH", "MAX_JSON_BODY_BYTES", "may_nest_too_deep", "too_deep"]

MAX_JSON_BODY_BYTES = 8 * 1024 * 1024
"""Bytes of a request body that is not multipart (the task-args upload). The largest
legitimate one carries a ControlNet `image_dataurl`: a 1024x1024 PNG is at most
about 4 MB in base64, so this leaves room twice over, while bounding the work of
measuring and parsing a body."""


def may_nest_too_deep(raw: bytes) -> bool:
    """False when `raw` certainly nests at most `MAX_DEPTH` levels, from a fast scan."""
    # A text cannot nest deeper than it has opening brackets: counting them is a
    # C-speed scan, and spares ordinary requests the slower measurement.
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def too_deep(raw: bytes) -> str | None:
    """Why `raw` must not be parsed (it nests over `MAX_DEPTH` levels), or None."""
    if not may_nest_too_deep(raw):
        return None
    depth = nesting_depth(raw)
    if depth <= MAX_DEPTH:
        return None
    return f"the JSON nests {depth} levels deep, at most {MAX_DEPTH}"
