"""The dashboard's HTTP side: the page, its JSON API and the live stream.

    dashboard = Dashboard(sandbox)      # the sandbox serves `dashboard.app` on its own port
    dashboard.start()                   # refresh on every block while someone watches
    ...
    dashboard.close()                   # ends the streams, then the server can stop

Routes (all same-origin; nothing here serves a key):
- `GET /`, `GET /static/...`: the page (plain HTML, CSS and JS in `static/`);
- `GET /api/state`: a snapshot (`DashboardView.refresh`);
- `GET /api/events`: server-sent events, one `state` event per change, sent as soon
  as a block is mined (the in-memory miner's feed) or seen (other chains are polled
  every `poll` s), and at least every second while anything else moves;
- `GET /api/tasks/{id}/images/{n}` (the PNG) and `/api/tasks/{id}/thumbs/{n}`;
- `POST /api/time/advance`, `POST /api/nodes/{node}/{pause|resume|crash}`,
  `POST /api/relay/faults`, `POST /api/faults/clear` (`controls`).

A POST must be `application/json` and, when the browser says where it comes from,
come from this origin; the Host must be a loopback name. So another web page the
developer has open cannot drive the sandbox (no CORS, no form posts, no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hydrogen_harness.sandbox.dashboard.controls import ControlError, advance, clear_faults, inject_fault, node_action
from hydrogen_harness.sandbox.dashboard.view import DashboardView
from hydrogen_harness.boundary.json_guard import JsonRefused, loads_bounded

if TYPE_CHECKING:
    from hydrogen_harness.sandbox.core import Sandbox

__all__ = ["Dashboard"]

_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
_MAX_BODY = 16 * 1024
_THUMB = 160  # pixels, the longer side of a thumbnail
_KEEPALIVE = 10.0  # seconds between comments on an idle stream (also notices a gone client)


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(maxsize=1))

    def offer(self, item: str | None) -> None:
        """On the subscriber's loop: keep only the newest snapshot (a slow client skips)."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)


class Dashboard:
    """The dashboard of one sandbox; see the module docstring."""

    def __init__(self, sandbox: Sandbox, *, poll: float = 0.25, period: float = 1.0) -> None:
        self.sandbox = sandbox
        self.view = DashboardView(sandbox)
        self.poll = poll
        self.period = period
        self.refresh_seconds = 0.0  # how long the last refresh took
        self._subscribers: set[_Subscriber] = set()
        self._subs_lock = threading.Lock()
        self._latest: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self._unsubscribe: Callable[[], None] | None = None
        self._thumbs: OrderedDict[bytes, bytes] = OrderedDict()
        self.app = _create_app(self)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        rpc = self.sandbox._rpc
        if rpc is not None:  # the in-memory chain announces its blocks
            self._unsubscribe = rpc.feed.on_block(lambda _number: self._wake.set())
        self._thread.start()

    def close(self) -> None:
        """Stop refreshing and end every stream (uvicorn waits for open responses to end)."""
        self._stop.set()
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self._offer_all(None)

    @property
    def watched(self) -> bool:
        with self._subs_lock:
            return bool(self._subscribers)

    def changed(self) -> None:
        """Refresh now (after a control, or anything else the chain does not announce)."""
        self._wake.set()

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        began = time.perf_counter()
        state = self.view.refresh()
        self.refresh_seconds = time.perf_counter() - began
        return state

    def _run(self) -> None:
        announced = self.sandbox._rpc is not None
        last_head = -1
        last_refresh = 0.0
        while not self._stop.is_set():
            woke = self._wake.wait(self.period if announced else self.poll)
            self._wake.clear()
            if self._stop.is_set() or not self.watched:
                continue
            if not announced and not woke and time.monotonic() - last_refresh < self.period:
                chain = self.sandbox.chain
                head = chain.block_number if chain is not None else -1
                if head == last_head:
                    continue  # polled: nothing mined
                last_head = head
            try:
                self._publish(self.snapshot())
            except Exception as exc:  # the chain went away mid-read (a revert, shutdown): say so, go on
                self._publish({"error": f"{type(exc).__name__}: {exc}"})
            last_refresh = time.monotonic()

    def _publish(self, state: dict[str, Any]) -> None:
        payload = json.dumps(state, separators=(",", ":"))
        if payload == self._latest:
            return
        self._latest = payload
        self._offer_all(payload)

    def _offer_all(self, payload: str | None) -> None:
        with self._subs_lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, payload)
            except RuntimeError:  # its loop is closed: the server is gone
                pass

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: the current snapshot at once, then each change."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._subs_lock:
            self._subscribers.add(sub)
        try:
            yield "retry: 1000\n\n"
            state = await run_in_threadpool(self.snapshot)
            payload = json.dumps(state, separators=(",", ":"))
            self._latest = payload
            yield f"event: state\ndata: {payload}\n\n"
            while not self._stop.is_set():
                try:
                    item = await asyncio.wait_for(sub.queue.get(), _KEEPALIVE)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    break
                yield f"event: state\ndata: {item}\n\n"
        finally:
            with self._subs_lock:
                self._subscribers.discard(sub)

    # ------------------------------------------------------------ images

    def image(self, task_id: int, index: int) -> bytes | None:
        relay = self.sandbox._relay
        if relay is None or index < 0:
            return None
        record = relay.task(task_id)
        if record is None or index >= record.image_count:
            return None
        return relay.storage.get_image(task_id, index)

    def thumbnail(self, task_id: int, index: int) -> bytes | None:
        png = self.image(task_id, index)
        if png is None:
            return None
        key = hashlib.sha256(png).digest()
        if key not in self._thumbs:
            with Image.open(io.BytesIO(png)) as picture:
                picture.thumbnail((_THUMB, _THUMB))
                out = io.BytesIO()
                picture.save(out, format="PNG", optimize=True)
            self._thumbs[key] = out.getvalue()
            if len(self._thumbs) > 512:
                self._thumbs.popitem(last=False)
        return self._thumbs[key]


# ---------------------------------------------------------------- HTTP


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse(ControlError(field, message, status).body(), status_code=status, headers=_HEADERS)


def _host_allowed(request: Request) -> bool:
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in _LOOPBACK


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ControlError("content-type", f"send the body as application/json, got {content_type or 'none'!r}")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_BODY:
            raise ControlError("body", f"the body is over {_MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        return loads_bounded(raw, max_bytes=_MAX_BODY, max_depth=8)
    except JsonRefused as exc:
        raise ControlError("body", str(exc)) from None


def _create_app(dashboard: Dashboard) -> Starlette:
    static = resources.files("hydrogen_harness.sandbox.dashboard") / "static"

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not _host_allowed(request):
                return _error(403, "host", "the dashboard answers only on a loopback host name (127.0.0.1, localhost)")
            if request.method == "POST" and not _same_origin(request):
                return _error(403, "origin", "controls are accepted only from the dashboard's own page")
            try:
                return await handler(request)
            except ControlError as exc:
                return JSONResponse(exc.body(), status_code=exc.status, headers=_HEADERS)

        return endpoint

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in _STATIC:
            return _error(404, "path", f"no such file: {name[:64]}")
        body = (static / name).read_bytes()
        return Response(body, media_type=_STATIC[name], headers=_HEADERS)

    async def state(_: Request) -> Response:
        return JSONResponse(await run_in_threadpool(dashboard.snapshot), headers=_HEADERS)

    async def events(_: Request) -> Response:
        headers = {**_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(dashboard.stream(), media_type="text/event-stream", headers=headers)

    def picture(thumb: bool) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            task_id, index = _index(request.path_params["task_id"], "task_id"), _index(request.path_params["n"], "n")
            reader = dashboard.thumbnail if thumb else dashboard.image
            png = await run_in_threadpool(reader, task_id, index)
            if png is None:
                return _error(404, "n", f"task {task_id} has no image {index} on the Relay")
            return Response(png, media_type="image/png", headers={**_HEADERS, "Cache-Control": "private, max-age=60"})

        return serve

    def control(run: Callable[..., dict[str, Any]], *params: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            body = await _json_body(request)
            args = [request.path_params[p] for p in params]
            answer = await run_in_threadpool(run, dashboard.sandbox, *args, body)
            dashboard.changed()
            return JSONResponse(answer, headers=_HEADERS)

        return serve

    async def not_found(request: Request) -> Response:
        return _error(404, "path", f"no such endpoint: {request.method} {request.url.path[:100]}")

    routes = [
        Route("/", guarded(page), methods=["GET"]),
        Route("/static/{name}", guarded(page), methods=["GET"]),
        Route("/api/state", guarded(state), methods=["GET"]),
        Route("/api/events", guarded(events), methods=["GET"]),
        Route("/api/tasks/{task_id}/images/{n}", guarded(picture(False)), methods=["GET"]),
        Route("/api/tasks/{task_id}/thumbs/{n}", guarded(picture(True)), methods=["GET"]),
        Route("/api/time/advance", guarded(control(advance)), methods=["POST"]),
        Route("/api/nodes/{node}/{action}", guarded(control(node_action, "node", "action")), methods=["POST"]),
        Route("/api/relay/faults", guarded(control(inject_fault)), methods=["POST"]),
        Route("/api/faults/clear", guarded(control(clear_faults)), methods=["POST"]),
        Route("/favicon.ico", lambda _: Response(status_code=204), methods=["GET"]),
        Route("/{rest:path}", guarded(not_found), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return Starlette(routes=routes)


def _index(text: str, field: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise ControlError(field, f"{field} must be a whole number, got {text[:32]!r}")
    return int(text)
