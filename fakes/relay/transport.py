"""Ways to reach the fake Relay: in process, with injected faults, or over loopback.

- `in_process_client(app)`: an `httpx.Client` whose requests go straight into the
  ASGI app (no sockets), for tests and simulations.
- `FaultInjector(app)`: the same, with a `respx.Router` in front. Requests that
  match no route reach the app; tests add routes that answer 5xx, raise
  connection errors or timeouts, or lose the answer after the app handled it::

      faults = FaultInjector(app)
      faults.fail_next(3, "POST", "/v1/inference_tasks", status=503)
      faults.fail_next(2, "GET", re.compile(r"/v1/inference_tasks/\\d+$"), error=httpx.ConnectError)
      faults.fail_next(1, "POST", "/v1/inference_tasks", error=httpx.ReadTimeout, after_delivery=True)
      faults.drop_next(2, None, "/v1/inference_tasks/7")
      client = faults.client()

- `serve_relay(app)`: uvicorn on a free 127.0.0.1 port in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import respx
import uvicorn
from respx.models import AllMockedAssertionError, PassThrough
from starlette.types import ASGIApp

from hydrogen_harness.fakes.relay.blocking import inline

__all__ = [
    "DEFAULT_BASE_URL",
    "FaultInjector",
    "InProcessTransport",
    "RunningRelay",
    "in_process_client",
    "serve_relay",
]

DEFAULT_BASE_URL = "http://relay.invalid"  # .invalid: never resolvable, so never a real host


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that runs an ASGI app in process.

    The app runs on an event loop of the calling thread's own, or, when the caller
    is itself inside a running event loop, on a private loop in a daemon thread
    started on first use; `close()` closes both. The app's unhandled errors come
    back as HTTP 500 answers, as they would from a server, rather than as
    exceptions in the caller.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._caller_loops = threading.local()
        self._all_caller_loops: list[asyncio.AbstractEventLoop] = []

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                stop = asyncio.Event()
                # The loop runs one root task until close(): anyio ties its worker threads
                # (where sync endpoints run) to the root task and keeps them while it lives.
                # Under run_forever each request's task was the root, so every request
                # started and stopped a thread of its own (a third of a request's time).
                thread = threading.Thread(
                    target=loop.run_until_complete, args=(stop.wait(),), name="relay-in-process", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._stop = loop, thread, stop
            return self._loop

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(content), request=request
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Read a streamed (generator) body here, in the caller's thread: the ASGI
        # transport can only iterate bodies asynchronously.
        request.read()
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a caller with no event loop of its own
            return self._in_caller(request)
        # Called from a coroutine (a sync client inside async code): its thread's loop is
        # busy waiting for this very call, so the app runs on the transport's own thread.
        return asyncio.run_coroutine_threadsafe(self._send(request), self._running_loop()).result()

    def _in_caller(self, request: httpx.Request) -> httpx.Response:
        """Runs the request on a loop of the calling thread's own, its blocking work
        inline (see `blocking`): a hop to another thread and back would cost more than
        the Relay's work on most requests."""
        loop = getattr(self._caller_loops, "loop", None)
        if loop is None:
            loop = self._caller_loops.loop = asyncio.new_event_loop()
            with self._lock:
                self._all_caller_loops.append(loop)
        with inline():
            return loop.run_until_complete(self._send(request))

    def close(self) -> None:
        with self._lock:
            loop, thread, stop = self._loop, self._thread, self._stop
            self._loop = self._thread = self._stop = None
            caller_loops, self._all_caller_loops = self._all_caller_loops, []
            self._caller_loops = threading.local()
        for caller_loop in caller_loops:
            if not caller_loop.is_running():  # one mid-request on another thread is left to it
                caller_loop.close()
        if loop is not None and thread is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
            thread.join()
            loop.close()


def in_process_client(app: ASGIApp, base_url: str = DEFAULT_BASE_URL, **kwargs: Any) -> httpx.Client:
    """An `httpx.Client` onto `app`, in process, no sockets (kwargs go to httpx.Client)."""
    return httpx.Client(transport=InProcessTransport(app), base_url=base_url, **kwargs)


class _RoutedTransport(httpx.BaseTransport):
    """Asks the router first; unmatched or pass-through requests go to `inner`."""

    def __init__(self, injector: FaultInjector) -> None:
        self._injector = injector

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        injector = self._injector
        injector.requests.append(request)
        if not injector.router.routes:  # no fault injected: respx's resolution costs a sixth of a request
            return injector.forward(request)
        try:
            return injector.router.handler(request)
        except (AllMockedAssertionError, PassThrough):
            return injector.forward(request)


class FaultInjector:
    """A respx router in front of the Relay; see the module docstring.

    `target` is an ASGI app (reached in process) or any httpx transport (e.g.
    `httpx.HTTPTransport()` for a Relay served on a socket). `requests` records
    every request sent through `client()`s, faulty or not, in order.
    """

    def __init__(self, target: ASGIApp | httpx.BaseTransport, base_url: str = DEFAULT_BASE_URL) -> None:
        self.base_url = base_url
        self._inner = target if isinstance(target, httpx.BaseTransport) else InProcessTransport(target)
        # assert_all_mocked: an unmatched request raises inside respx, and we then
        # hand it to the app; no route ever needs to be a catch-all.
        self.router = respx.Router(assert_all_called=False, assert_all_mocked=True, base_url=base_url)
        self.requests: list[httpx.Request] = []

    def client(self, **kwargs: Any) -> httpx.Client:
        """A new `httpx.Client` through this injector (kwargs go to httpx.Client)."""
        return httpx.Client(transport=_RoutedTransport(self), base_url=self.base_url, **kwargs)

    def forward(self, request: httpx.Request) -> httpx.Response:
        """Deliver `request` to the Relay itself, bypassing the routes."""
        response = self._inner.handle_request(request)
        response.read()
        return response

    def fail_next(
        self,
        times: int,
        method: str | None,
        path: str | re.Pattern[str],
        *,
        status: int | None = None,
        error: type[httpx.TransportError] | httpx.TransportError | None = None,
        after_delivery: bool = False,
    ) -> respx.Route:
        """Make the next `times` requests matching `method` and `path` fail.

        `method` None matches any method; `path` is exact, or a compiled regex.
        Give either `status` (answer that HTTP status with a JSON `{"message"}`
        body, e.g. 503) or `error` (raise it, e.g. `httpx.ConnectError`,
        `httpx.ReadTimeout`, `httpx.RemoteProtocolError` for a dropped
        connection). With `after_delivery` the request reaches the Relay first
        and only its answer is lost, as when a timeout fires late. Later matching
        requests go through. Returns the respx route (its `call_count` counts
        every matching request, failed or not).
        """
        if (status is None) == (error is None):
            raise ValueError("fail_next needs exactly one of status= or error=")
        if times < 0:
            raise ValueError(f"times must not be negative, got {times}")
        remaining = times

        def effect(request: httpx.Request) -> httpx.Response | httpx.Request:
            nonlocal remaining
            if remaining <= 0:
                return request  # pass through to the Relay
            remaining -= 1
            if after_delivery:
                self.forward(request)
            if status is not None:
                return httpx.Response(status, json={"message": f"injected fault: HTTP {status}"})
            assert error is not None
            raise error if isinstance(error, BaseException) else error(f"injected fault: {error.__name__}", request=request)

        lookup: dict[str, Any] = {"path__regex": path.pattern} if isinstance(path, re.Pattern) else {"path": path}
        if method is not None:
            lookup["method"] = method.upper()
        return self.router.route(**lookup).mock(side_effect=effect)

    def drop_next(self, times: int, method: str | None, path: str | re.Pattern[str]) -> respx.Route:
        """The next `times` matching requests lose their connection before any answer."""
        return self.fail_next(times, method, path, error=httpx.RemoteProtocolError)

    def clear(self) -> None:
        """Remove every injected fault (recorded requests are kept)."""
        self.router.clear()

    def close(self) -> None:
        """Stop the in-process app's event loop (clients made here stop working)."""
        self._inner.close()


# ---------------------------------------------------------------- a real server


@dataclass(frozen=True)
class RunningRelay:
    """A Relay served by uvicorn: `url` is its base URL, e.g. http://127.0.0.1:PORT."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class _Server(uvicorn.Server):
    """uvicorn's server, with an event for "start-up is over" (it has no hook for it)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_done.set()


@contextlib.contextmanager
def serve_relay(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 10.0
) -> Iterator[RunningRelay]:
    """Serve `app` with uvicorn on `host`:`port` (0: a free port) in a background
    thread; stops the server and joins the thread on exit."""
    # Bind here, so the port is known before uvicorn starts and nobody can take it.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on such sockets; without it
    # every answer waits ~40 ms for the client's delayed ACK (23 requests/s, not 1000+).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"relay:{bound_port}", daemon=True)
    thread.start()
    try:
        if not server.startup_done.wait(startup_timeout):
            raise TimeoutError(f"the Relay server did not start within {startup_timeout} s")
        if not server.started:
            raise RuntimeError(f"the Relay server failed to start on {host}:{bound_port}")
        yield RunningRelay(host=host, port=bound_port)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
