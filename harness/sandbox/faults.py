"""Faults injected at the sandbox's servers, so every client sees them, whatever its library.

An ASGI middleware sits in front of the Relay app and of the JSON-RPC app. A test
arms it with `fail_next`; the next matching requests are then answered with an
HTTP status, delayed, or dropped (the connection is closed without an answer),
and later ones go through::

    faults.fail_next(2, "POST", "/v1/inference_tasks", status=503)
    faults.fail_next(1, "GET", re.compile(r"/results/\\d+$"), drop=True)
    faults.fail_next(1, "POST", "/", server="rpc", rpc_method="eth_sendRawTransaction", delay=2.0)

A path is matched exactly, a compiled regex is searched in the path. On the
JSON-RPC server every request is `POST /`, so `rpc_method` narrows a fault to
requests (or batches) calling that method. Each `fail_next` returns a
`FaultHandle` whose `calls` counts the requests it answered.

Dropping: uvicorn answers 500 when an app fails before answering, so the
middleware aborts the TCP connection itself (uvicorn's `send` is bound to the
request cycle, which holds the transport). A client sees what a dead server
gives: httpx raises `RemoteProtocolError` ("Server disconnected without sending a
response"), requests a `ConnectionError`. The request is read whole first, so the
connection closes cleanly rather than with a reset. Under another server, the answer is
started and never finished, which closes the connection mid-answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hydrogen_harness.boundary.asgi_body import read_body, replay

__all__ = ["FaultHandle", "RequestSeen", "Server", "ServerFaults"]

Server = Literal["relay", "rpc"]
_SERVERS: tuple[Server, ...] = ("relay", "rpc")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_DISCONNECT_WAIT = 5.0  # seconds to wait for the server to notice a dropped connection


@dataclass
class FaultHandle:
    """One armed fault; `calls` counts the requests it answered (at most `count`)."""

    count: int
    method: str | None
    path: str | re.Pattern[str]
    server: Server
    status: int | None = None
    delay: float | None = None
    drop: bool = False
    rpc_method: str | None = None
    calls: int = 0

    @property
    def remaining(self) -> int:
        return self.count - self.calls

    @property
    def effect(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}"
        if self.delay is not None:
            return f"delay {self.delay:g} s"
        return "dropped"

    def matches(self, server: str, method: str, path: str, rpc_methods: frozenset[str]) -> bool:
        if server != self.server or (self.method is not None and method != self.method):
            return False
        if isinstance(self.path, re.Pattern):
            if self.path.search(path) is None:
                return False
        elif path != self.path:
            return False
        return self.rpc_method is None or self.rpc_method in rpc_methods


@dataclass(frozen=True)
class RequestSeen:
    """A request the middleware passed on or faulted, for listeners (the timeline)."""

    server: Server
    method: str
    path: str
    status: int | None  # None: dropped
    fault: FaultHandle | None
    headers: dict[str, str] = field(default_factory=dict)


def _check(count: int, method: str | None, path: Any, status: int | None, delay: float | None, drop: bool, server: str) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"fail_next needs a count of requests >= 1, got {count!r}")
    if method is not None and method.upper() not in _METHODS:
        raise ValueError(f"unknown HTTP method {method!r}: expected one of {', '.join(_METHODS)} or None for any")
    if not isinstance(path, (str, re.Pattern)):
        raise ValueError(f"path must be a string (exact) or a compiled regex, got {path!r}")
    if server not in _SERVERS:
        raise ValueError(f"unknown server {server!r}: expected 'relay' or 'rpc'")
    given = [name for name, value in (("status", status), ("delay", delay)) if value is not None] + (["drop"] if drop else [])
    if len(given) != 1:
        raise ValueError(f"fail_next needs exactly one of status=, delay= or drop=True, got {given or 'none'}")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError(f"status must be an HTTP status code (100-599), got {status!r}")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay <= 0):
        raise ValueError(f"delay must be a positive number of seconds, got {delay!r}")


class ServerFaults:
    """The faults armed on the sandbox's servers; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[FaultHandle] = []
        self._listeners: list[Callable[[RequestSeen], None]] = []
        self._served: set[Server] = set()  # the servers this injector sits in front of

    def fail_next(
        self,
        count: int,
        method: str | None,
        path: str | re.Pattern[str],
        *,
        status: int | None = None,
        delay: float | None = None,
        drop: bool = False,
        server: Server = "relay",
        rpc_method: str | None = None,
    ) -> FaultHandle:
        """Fault the next `count` requests matching `method` (None: any) and `path`
        on `server`: answer `status`, or pass them on after `delay` seconds, or
        `drop` the connection unanswered. Faults armed earlier match first."""
        _check(count, method, path, status, delay, drop, server)
        if rpc_method is not None and server != "rpc":
            raise ValueError(f"rpc_method={rpc_method!r} only applies to server='rpc'")
        if self._served and server not in self._served:
            # e.g. the chain is anvil or a node of the user's: its server is not ours to break.
            raise ValueError(f"no {server!r} server behind these faults: this sandbox serves only {sorted(self._served)}")
        handle = FaultHandle(
            count=count,
            method=method.upper() if method is not None else None,
            path=path,
            server=server,
            status=status,
            delay=float(delay) if delay is not None else None,
            drop=drop,
            rpc_method=rpc_method,
        )
        with self._lock:
            self._faults.append(handle)
        return handle

    def clear(self) -> None:
        """Disarm every fault (handles keep their counts)."""
        with self._lock:
            self._faults.clear()

    @property
    def armed(self) -> list[FaultHandle]:
        """The faults that still have requests to answer."""
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def on_request(self, listener: Callable[[RequestSeen], None]) -> None:
        """Call `listener` after each request the servers answered (on the server's thread)."""
        self._listeners.append(listener)

    def wrap(self, app: ASGIApp, server: Server) -> ASGIApp:
        """`app` behind this fault injector, as `server`."""
        self._served.add(server)
        return _FaultMiddleware(app, self, server)

    # ------------------------------------------------------------ used by the middleware

    def _needs_body(self, server: Server) -> bool:
        with self._lock:
            return any(f.server == server and f.rpc_method is not None and f.remaining > 0 for f in self._faults)

    def _claim(self, server: Server, method: str, path: str, rpc_methods: frozenset[str]) -> FaultHandle | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(server, method, path, rpc_methods):
                    fault.calls += 1
                    return fault
        return None

    def _notify(self, seen: RequestSeen) -> None:
        for listener in list(self._listeners):
            try:
                listener(seen)
            except Exception:  # a broken listener must not break the server
                pass


def _rpc_methods(body: bytes) -> frozenset[str]:
    try:
        payload = json.loads(body)
    except ValueError:
        return frozenset()
    calls = payload if isinstance(payload, list) else [payload]
    return frozenset(c["method"] for c in calls if isinstance(c, dict) and isinstance(c.get("method"), str))


async def _answer(send: Send, status: int) -> None:
    body = json.dumps({"message": f"injected fault: HTTP {status}"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drop(receive: Receive, send: Send, body_read: bool) -> None:
    if not body_read:
        # Take the whole request first: closing on unread bytes makes the kernel send a
        # reset (the client sees ReadError) instead of a close (RemoteProtocolError).
        await read_body(receive)
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if isinstance(transport, asyncio.Transport):
        transport.abort()
        # Let the server see the connection lost before the app returns, or it would
        # try to answer 500 on the closed socket.
        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(disconnected(), _DISCONNECT_WAIT)
        except asyncio.TimeoutError:
            pass
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})


class _FaultMiddleware:
    def __init__(self, app: ASGIApp, faults: ServerFaults, server: Server) -> None:
        self.app = app
        self.faults = faults
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSocket and lifespan pass untouched
            await self.app(scope, receive, send)
            return
        method, path = str(scope["method"]), str(scope["path"])
        rpc_methods: frozenset[str] = frozenset()
        body_read = self.faults._needs_body(self.server)
        if body_read:
            body = await read_body(receive)
            rpc_methods = _rpc_methods(body)
            receive = replay(body, receive)
        fault = self.faults._claim(self.server, method, path, rpc_methods)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        told = False

        def tell(status: int | None) -> None:
            # Before the answer leaves: a client that got it finds the request noted.
            nonlocal told
            if not told:
                told = True
                self.faults._notify(RequestSeen(self.server, method, path, status, fault, headers))

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                tell(int(message["status"]))
            await send(message)

        try:
            if fault is not None and fault.status is not None:
                await _answer(watched, fault.status)
            elif fault is not None and fault.drop:
                tell(None)
                await _drop(receive, send, body_read)
            else:
                if fault is not None and fault.delay is not None:
                    await asyncio.sleep(fault.delay)
                await self.app(scope, receive, watched)
        except BaseException:
            tell(500)  # the server answers 500 for an app that failed
            raise
