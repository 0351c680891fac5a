"""A JSON-RPC 2.0 endpoint over the in-memory chain: HTTP (POST /) and WebSocket (/), batches too.

    rpc = EthRpc(chain, lock=lock, clock=clock)
    app = create_rpc_app(rpc)          # any ASGI server; the sandbox uses uvicorn

The methods and their wire format live in `rpc_methods`; this module speaks
JSON-RPC 2.0: parse errors, invalid requests, batches, notifications (no
answer), and an internal error answer rather than a dropped connection when a
method fails unexpectedly. A WebSocket on the same path and port, as on anvil
and geth, gets the same answers plus eth_subscribe (`rpc_ws`); over HTTP,
eth_subscribe is refused as geth refuses it. CORS is open, as on anvil, so a
browser dapp on another port can use the endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hydrogen_harness.boundary.json_guard import MAX_BODY_BYTES, JsonRefused, loads_bounded
from hydrogen_harness.jsonrpc.errors import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError
from hydrogen_harness.jsonrpc.methods import EthRpc
from hydrogen_harness.jsonrpc.ws import MethodCall, serve_websocket, without_subscriptions

__all__ = ["MAX_BATCH", "answer", "answer_payload", "create_rpc_app"]

MAX_BATCH = 1000
_log = logging.getLogger("hydrogen_harness.rpc")


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def answer(rpc: EthRpc, request: Any) -> dict[str, Any] | None:
    """The JSON-RPC answer to one decoded request object over HTTP (None for a notification)."""
    return _answer(without_subscriptions(rpc), request)


def _answer(call: MethodCall, request: Any) -> dict[str, Any] | None:
    if not isinstance(request, dict):
        return _error(None, INVALID_REQUEST, "invalid request: expected a JSON object")
    request_id = request.get("id")
    method = request.get("method")
    if request.get("jsonrpc", "2.0") != "2.0" or not isinstance(method, str):
        return _error(request_id, INVALID_REQUEST, "invalid request: needs jsonrpc \"2.0\" and a method name")
    try:
        result = call(method, request.get("params"))
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
    except RpcError as exc:
        response = {"jsonrpc": "2.0", "id": request_id, "error": exc.to_json()}
    except Exception as exc:  # a bug or a state eth-tester cannot handle: answer, and log it
        _log.exception("JSON-RPC %s failed", method)
        response = _error(request_id, INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
    return response if "id" in request else None


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (JsonRefused) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise JsonRefused(f"the body is {declared} bytes, at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise JsonRefused(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def answer_payload(call: MethodCall, payload: Any) -> Any:
    """The answer to one decoded message (a request or a batch), each method answered by
    `call`; None when there is nothing to answer (notifications only)."""
    if isinstance(payload, list):
        if not payload:
            return _error(None, INVALID_REQUEST, "invalid request: empty batch")
        if len(payload) > MAX_BATCH:
            return _error(None, INVALID_REQUEST, f"invalid request: batch of {len(payload)} requests, at most {MAX_BATCH}")
        answers = [_answer(call, item) for item in payload]
        return [a for a in answers if a is not None] or None
    return _answer(call, payload)


def create_rpc_app(rpc: EthRpc) -> Starlette:
    """The app serving `rpc` at POST / and as a WebSocket at / (GET / says what this is)."""
    http_call = without_subscriptions(rpc)

    async def post(request: Request) -> Response:
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
        except JsonRefused as exc:
            return JSONResponse(_error(None, INVALID_REQUEST, f"invalid request: {exc}"), status_code=413)
        try:
            payload = loads_bounded(body)
        except JsonRefused as exc:
            return JSONResponse(_error(None, PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(payload, list) and 0 < len(payload) <= MAX_BATCH:
            # One request at a time, so a client that leaves stops its batch's work.
            answers = []
            for item in payload:
                if await request.is_disconnected():
                    return Response(status_code=499)
                answered = await run_in_threadpool(_answer, http_call, item)
                if answered is not None:
                    answers.append(answered)
            result: Any = answers or None
        else:
            # Methods block on the chain lock: keep them off the event loop.
            result = await run_in_threadpool(answer_payload, http_call, payload)
        if result is None:
            return Response(status_code=204)  # notifications only: nothing to answer
        return JSONResponse(result)

    async def describe(request: Request) -> Response:
        return JSONResponse(
            {"message": "hydrogen-harness JSON-RPC endpoint: POST JSON-RPC 2.0 requests to /, or open a WebSocket on /"}
        )

    async def socket(websocket: WebSocket) -> None:
        await serve_websocket(websocket, rpc, answer_payload)

    return Starlette(
        routes=[
            Route("/", post, methods=["POST"]),
            Route("/", describe, methods=["GET"]),
            WebSocketRoute("/", socket),
        ],
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["POST", "GET"], allow_headers=["*"])],
    )
