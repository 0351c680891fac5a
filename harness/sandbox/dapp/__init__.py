"""The reference DApp (static/: plain browser JavaScript, no build step), served by the
sandbox on the Relay's port at `/dapp/`: same origin as the Relay, so it needs no CORS.

`/dapp/config.json` tells the page the contracts' addresses and the chain id; all chain
access goes through the wallet (`window.ethereum`), the Relay is at the page's origin.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["STATIC", "with_dapp"]

STATIC = Path(__file__).resolve().parent / "static"
_PREFIX = "/dapp"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def with_dapp(app: Any, config: Callable[[], dict[str, Any]]) -> Any:
    """An ASGI app answering GET /dapp/... from STATIC (and /dapp/config.json from
    `config()`), everything else by `app`."""

    async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", "")) if scope.get("type") == "http" else ""
        if path != _PREFIX and not path.startswith(_PREFIX + "/"):
            await app(scope, receive, send)
            return
        if path == _PREFIX:
            await _answer(send, 308, b"", "text/plain", [(b"location", b"/dapp/")])
            return
        name = path[len(_PREFIX) + 1 :] or "index.html"
        if scope.get("method") not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed", "text/plain")
        elif name == "config.json":
            await _answer(send, 200, json.dumps(config()).encode(), "application/json")
        elif "/" in name or name.startswith(".") or not (STATIC / name).is_file():
            await _answer(send, 404, b"not found", "text/plain")
        else:
            file = STATIC / name
            kind = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            await _answer(send, 200, file.read_bytes(), kind)

    return serve


async def _answer(send: Any, status: int, body: bytes, kind: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
