"""Where the Relay's blocking work runs: on a worker thread under a server, so that the
event loop keeps serving other connections, and on the caller's own thread when the app
is reached in process, where the request is the only thing its loop runs.

A thread hop costs more than half a millisecond on a small machine, as much as the
whole of a Relay request's own work, and the in-process transport sets `inline()` around
each request it runs on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["inline", "run_blocking"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_INLINE: ContextVar[bool] = ContextVar("hydrogen_relay_inline", default=False)


@contextmanager
def inline() -> Iterator[None]:
    """Requests started inside run their blocking work on the current thread."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


async def run_blocking(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`function(*args, **kwargs)`, on a worker thread unless inside `inline()`."""
    if _INLINE.get():
        return function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)
