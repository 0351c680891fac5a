"""Reading an ASGI request's body ahead of the app, and handing it on.

Middleware that must see a body before the app does (to bound it, or to route a
fault by the JSON-RPC method inside it) reads it with `read_body`, then passes
the app `replay(body, receive)`, which delivers the same bytes and then defers
to the server for whatever comes next (a disconnect).
"""

from __future__ import annotations

from starlette.types import Message, Receive

__all__ = ["BodyTooLarge", "read_body", "replay"]


class BodyTooLarge(Exception):
    """The body passed `limit` bytes (the rest is left unread)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The whole body; `BodyTooLarge` as soon as it passes `limit` bytes (None: no limit)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: nothing more will come
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body read ahead, then the client's later messages."""
    delivered = False

    async def replay_receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay_receive
