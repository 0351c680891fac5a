"""A JSON-RPC 2.0 HTTP endpoint over the in-memory chain (POST /, batches too).

    rpc = EthRpc(chain, lock=lock, clock=clock)
    app = create_rpc_app(rpc)          # any ASGI server; the sandbox uses uvicorn

The methods and their wire format live in `rpc_methods`; this module only
speaks JSON-RPC 2.0 over HTTP: parse errors, invalid requests, batches,
notifications (no answer), and an internal error answer rather than a dropped
connection when a method fails unexpectedly. CORS is open, as on anvil, so a
browser dapp on another port can use the endpoint.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.rpc_errors import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError
from harness.rpc_methods import EthRpc

__all__ = ["MAX_BATCH", "answer", "create_rpc_app"]

MAX_BATCH = 1000
_log = logging.getLogger("harness.rpc")


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def answer(rpc: EthRpc, request: Any) -> dict[str, Any] | None:
    """The JSON-RPC answer to one decoded request object (None for a notification)."""
    if not isinstance(request, dict):
        return _error(None, INVALID_REQUEST, "invalid request: expected a JSON object")
    request_id = request.get("id")
    method = request.get("method")
    if request.get("jsonrpc", "2.0") != "2.0" or not isinstance(method, str):
        return _error(request_id, INVALID_REQUEST, "invalid request: needs jsonrpc \"2.0\" and a method name")
    try:
        result = rpc.call(method, request.get("params"))
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
    except RpcError as exc:
        response = {"jsonrpc": "2.0", "id": request_id, "error": exc.to_json()}
    except Exception as exc:  # a bug or a state eth-tester cannot handle: answer, and log it
        _log.exception("JSON-RPC %s failed", method)
        response = _error(request_id, INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
    return response if "id" in request else None


def _answer_all(rpc: EthRpc, payload: Any) -> Any:
    if isinstance(payload, list):
        if not payload:
            return _error(None, INVALID_REQUEST, "invalid request: empty batch")
        if len(payload) > MAX_BATCH:
            return _error(None, INVALID_REQUEST, f"invalid request: batch of {len(payload)} requests, at most {MAX_BATCH}")
        answers = [answer(rpc, item) for item in payload]
        return [a for a in answers if a is not None] or None
    return answer(rpc, payload)


def create_rpc_app(rpc: EthRpc) -> Starlette:
    """The HTTP app serving `rpc` at POST / (GET / says what this is)."""

    async def post(request: Request) -> Response:
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse(_error(None, PARSE_ERROR, "parse error: the body is not JSON"))
        # Methods block on the chain lock: keep them off the event loop.
        result = await run_in_threadpool(_answer_all, rpc, payload)
        if result is None:
            return Response(status_code=204)  # notifications only: nothing to answer
        return JSONResponse(result)

    async def describe(request: Request) -> Response:
        return JSONResponse({"message": "hydrogen-harness JSON-RPC endpoint: POST JSON-RPC 2.0 requests to /"})

    return Starlette(
        routes=[Route("/", post, methods=["POST"]), Route("/", describe, methods=["GET"])],
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["POST", "GET"], allow_headers=["*"])],
    )
