"""JSON-RPC over WebSocket on the HTTP endpoint's path and port, with eth_subscribe.

    route = WebSocketRoute("/", lambda ws: serve_websocket(ws, rpc, answer_payload))

A socket carries the same JSON-RPC 2.0 requests and batches as HTTP (text or binary
frames; answers in text frames, as geth and anvil send them; a frame that is not
JSON gets a -32700 answer and the socket stays open), plus the subscriptions of
geth's `eth` namespace:

- `newHeads`: one notification per new block, its header as geth sends it
  (eth_getBlockByNumber(n, false) without transactions, uncles, withdrawals,
  size and totalDifficulty);
- `logs` with an optional {address, topics, fromBlock, toBlock} filter: one
  notification per matching log, in block and log order, as eth_getLogs returns it;
- `newPendingTransactions`: each transaction's hash, or with `true` the transaction
  as geth sends a pending one (no block fields).

Blocks come from `EthRpc.feed` on the miner's thread; each subscription queues
them to its connection, whose own task turns them into notifications, so a block's
notification follows its visibility in eth_blockNumber, in block order. A
subscription's first notification follows the answer that gave its id (geth
activates a subscription only once that answer is written). Closing the socket
unsubscribes everything from the feed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from hydrogen_harness.boundary.json_guard import JsonRefused, loads_bounded
from hydrogen_harness.jsonrpc.errors import INVALID_PARAMS, METHOD_NOT_FOUND, PARSE_ERROR, SERVER_ERROR, RpcError
from hydrogen_harness.jsonrpc.methods import EthRpc
from hydrogen_harness.jsonrpc.wire import WireError, parse_filter

__all__ = [
    "NOTIFICATIONS_UNSUPPORTED",
    "SUBSCRIPTION_KINDS",
    "AnswerPayload",
    "MethodCall",
    "serve_websocket",
    "without_subscriptions",
]

NOTIFICATIONS_UNSUPPORTED = -32001  # geth's code for eth_subscribe over HTTP
SUBSCRIPTION_KINDS = ("newHeads", "logs", "newPendingTransactions")
# eth_getBlockByNumber fields that geth's header (RPCMarshalHeader) does not carry.
_NOT_IN_HEADER = ("transactions", "uncles", "withdrawals", "size", "totalDifficulty")
_KEEP_BLOCKS = 256  # delivered block hashes kept to find where an evm_revert forked

MethodCall = Callable[[str, Any], Any]
# rpc_server.answer_payload: one decoded request or batch answered with a MethodCall.
AnswerPayload = Callable[[MethodCall, Any], Any]

_log = logging.getLogger("hydrogen_harness.rpc")


def without_subscriptions(rpc: EthRpc) -> MethodCall:
    """`rpc.call` for a transport that cannot push (HTTP), refusing subscriptions as geth does."""

    def call(method: str, params: Any) -> Any:
        if method == "eth_subscribe":
            raise RpcError(NOTIFICATIONS_UNSUPPORTED, "notifications not supported")
        if method == "eth_unsubscribe":
            _subscription_id(params)
            raise RpcError(SERVER_ERROR, "subscription not found")
        return rpc.call(method, params)

    return call


async def serve_websocket(websocket: WebSocket, rpc: EthRpc, answer_payload: AnswerPayload) -> None:
    """Serve one WebSocket connection until the client closes it."""
    await websocket.accept()
    connection = _Connection(rpc, asyncio.get_running_loop())
    send_lock = asyncio.Lock()  # answers and notifications come from two tasks

    async def send(message: Any) -> None:
        async with send_lock:
            await websocket.send_text(json.dumps(message))

    notifier = asyncio.create_task(connection.deliver(send))
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                break
            raw = frame.get("text") if frame.get("text") is not None else frame.get("bytes")
            try:
                payload = loads_bounded(raw or "")
            except (JsonRefused, UnicodeDecodeError) as exc:
                await send(_error(None, PARSE_ERROR, f"parse error: {exc}"))
                continue
            # Methods block on the chain lock: keep them off the event loop.
            answer = await run_in_threadpool(answer_payload, connection.call, payload)
            if answer is not None:
                await send(answer)
            connection.activate()
    except WebSocketDisconnect:
        pass  # the client went away while we answered
    finally:
        connection.close()
        notifier.cancel()
        await asyncio.gather(notifier, return_exceptions=True)  # reap it, whatever ended it


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _new_id() -> str:
    """16 random bytes in hex, the first digit never 0, so that the id reads both as
    anvil's 32-digit hex string and as geth's quantity (which drops leading zeros)."""
    raw = bytearray(secrets.token_bytes(16))
    raw[0] |= 0x10
    return "0x" + raw.hex()


def _subscription_id(params: Any) -> str:
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
        raise RpcError(INVALID_PARAMS, "invalid params: expected one subscription id")
    return params[0]


def _number(block: dict[str, Any]) -> int:
    return int(block["number"], 16)


class _BlockCursor:
    """The blocks a subscription has not heard of yet, in order, for each block the feed announces.

    The feed may skip numbers (a miner that publishes only its last block of a
    batch) or repeat them, and evm_revert replaces blocks: so walk back from the
    announced block along parent hashes to the last block already delivered, and
    deliver everything after it.
    """

    def __init__(self, block_at: Callable[[int], dict[str, Any] | None], head: dict[str, Any]) -> None:
        self._block_at = block_at
        self._delivered: dict[int, str] = {_number(head): head["hash"]}

    def advance(self, announced: int) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        block = self._block_at(announced)
        oldest = min(self._delivered)
        while block is not None:
            number = _number(block)
            if self._delivered.get(number) == block["hash"]:
                break  # told twice, or already delivered by an earlier walk
            fresh.append(block)
            if self._delivered.get(number - 1) == block["parentHash"] or number - 1 < oldest:
                break
            parent = self._block_at(number - 1)
            if parent is None or parent["hash"] != block["parentHash"]:
                break  # the chain changed while we walked: its next announcement says how
            block = parent
        fresh.reverse()
        if fresh:
            newest = _number(fresh[-1])
            # Blocks above the newest one were replaced (by a revert): forget them.
            self._delivered = {n: h for n, h in self._delivered.items() if n < _number(fresh[0])}
            self._delivered.update((_number(b), b["hash"]) for b in fresh)
            for n in [n for n in self._delivered if n <= newest - _KEEP_BLOCKS]:
                del self._delivered[n]
        return fresh


class _Subscription:
    """One eth_subscribe: its feed listener, and what it makes of each value the feed tells."""

    kind = ""

    def __init__(self, rpc: EthRpc) -> None:
        self.rpc = rpc
        self.id = _new_id()
        self.ready = asyncio.Event()  # set once the answer carrying the id is sent
        self.closed = False
        self.unsubscribe: Callable[[], None] = lambda: None

    def listen(self, heard: Callable[[Any], None]) -> Callable[[], None]:
        return self.rpc.feed.on_block(heard)

    def start(self) -> None:
        """Called once listening: note where the subscription starts."""

    def results(self, value: Any) -> list[Any]:
        """The notification results for one feed value (blocks on the chain lock)."""
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
        self.unsubscribe()


def _option(value: Any, kind: type, rule: str) -> Any:
    """A subscription's optional second parameter: None or a `kind`, else INVALID_PARAMS."""
    if value is not None and not isinstance(value, kind):
        raise RpcError(INVALID_PARAMS, f"invalid params: {rule}")
    return value


class _NewHeads(_Subscription):
    kind = "newHeads"
    _cursor: _BlockCursor

    def start(self) -> None:
        # Listening began before this read: a block mined meanwhile is either the
        # start itself or announced to us later, never missed.
        head = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        self._cursor = _BlockCursor(self._block_at, head)

    def _block_at(self, number: int) -> dict[str, Any] | None:
        block: dict[str, Any] | None = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        return block

    def results(self, value: Any) -> list[Any]:
        return [{k: v for k, v in block.items() if k not in _NOT_IN_HEADER} for block in self._cursor.advance(value)]


class _Logs(_NewHeads):
    kind = "logs"

    def __init__(self, rpc: EthRpc, raw_filter: Any) -> None:
        super().__init__(rpc)
        raw_filter = _option(raw_filter, dict, "the logs filter must be an object") or {}
        try:
            request = parse_filter(raw_filter)
        except WireError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from None
        # As in geth, only numeric bounds limit a subscription; tags mean every new block.
        self._low = request.from_block if isinstance(request.from_block, int) else 0
        self._high = request.to_block if isinstance(request.to_block, int) else None
        self._query = {key: raw_filter[key] for key in ("address", "topics") if raw_filter.get(key) is not None}

    def results(self, value: Any) -> list[Any]:
        logs: list[Any] = []
        for block in self._cursor.advance(value):
            number = _number(block)
            if number < self._low or (self._high is not None and number > self._high):
                continue
            try:
                logs.extend(self.rpc.call("eth_getLogs", [{**self._query, "blockHash": block["hash"]}]))
            except RpcError:
                continue  # the block was reverted away since it was announced
        return logs


class _PendingTransactions(_Subscription):
    kind = "newPendingTransactions"

    def __init__(self, rpc: EthRpc, full: Any) -> None:
        super().__init__(rpc)
        self._full = bool(_option(full, bool, "the second argument must be a boolean (full transactions)"))

    def listen(self, heard: Callable[[Any], None]) -> Callable[[], None]:
        return self.rpc.feed.on_pending(heard)

    def results(self, value: Any) -> list[Any]:
        if not self._full:
            return [value]
        tx = self.rpc.call("eth_getTransactionByHash", [value])
        if tx is None:
            return []  # reverted away
        # Sent as geth sends a pool transaction, even if it has been mined since.
        tx.update(blockHash=None, blockNumber=None, transactionIndex=None)
        tx.pop("blockTimestamp", None)
        if tx.get("maxFeePerGas") is not None:
            tx["gasPrice"] = tx["maxFeePerGas"]
        return [tx]


class _Connection:
    """The subscriptions of one socket, and the queue from the feed to its notifier task."""

    def __init__(self, rpc: EthRpc, loop: asyncio.AbstractEventLoop) -> None:
        self.rpc = rpc
        self._loop = loop
        self._events: asyncio.Queue[tuple[_Subscription, Any]] = asyncio.Queue()
        self._lock = threading.Lock()  # `call` runs on worker threads, `close` on the loop
        self._subscriptions: dict[str, _Subscription] = {}
        self._unannounced: list[_Subscription] = []
        self._closed = False

    # ------------------------------------------------------------ requests (worker threads)

    def call(self, method: str, params: Any) -> Any:
        if method == "eth_subscribe":
            return self._subscribe(params)
        if method == "eth_unsubscribe":
            subscription_id = _subscription_id(params)
            with self._lock:
                subscription = self._subscriptions.pop(subscription_id, None)
            if subscription is None:
                raise RpcError(SERVER_ERROR, "subscription not found")
            subscription.close()
            return True
        return self.rpc.call(method, params)

    def _subscribe(self, params: Any) -> str:
        subscription = self._new_subscription([] if params is None else params)
        with self._lock:
            if self._closed:
                raise RpcError(SERVER_ERROR, "the connection is closing")
            subscription.unsubscribe = subscription.listen(self._listener(subscription))
            self._subscriptions[subscription.id] = subscription
            self._unannounced.append(subscription)
        try:
            subscription.start()
        except BaseException:
            with self._lock:
                self._subscriptions.pop(subscription.id, None)
            subscription.close()
            raise
        return subscription.id

    def _new_subscription(self, params: Any) -> _Subscription:
        """The subscription `params` ask for, with geth's errors for what it would refuse."""
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, "params must be an array (named params are not supported)")
        if not params or not isinstance(params[0], str):
            raise RpcError(INVALID_PARAMS, "invalid params: expected subscription name as first argument")
        kind, arguments = params[0], params[1:]
        if kind not in SUBSCRIPTION_KINDS:
            raise RpcError(METHOD_NOT_FOUND, f'no "{kind}" subscription in eth namespace')
        most = 0 if kind == "newHeads" else 1
        if len(arguments) > most:
            raise RpcError(INVALID_PARAMS, f"too many arguments, want at most {most + 1}")
        if kind == "newHeads":
            return _NewHeads(self.rpc)
        argument = arguments[0] if arguments else None
        return _Logs(self.rpc, argument) if kind == "logs" else _PendingTransactions(self.rpc, argument)

    def _listener(self, subscription: _Subscription) -> Callable[[Any], None]:
        def heard(value: Any) -> None:  # on the miner's thread: hand over, never block
            try:
                self._loop.call_soon_threadsafe(self._events.put_nowait, (subscription, value))
            except RuntimeError:
                pass  # the loop is gone: the connection is closing and unsubscribes

        return heard

    # ------------------------------------------------------------ delivery (the event loop)

    def activate(self) -> None:
        """The answers carrying the new subscriptions' ids are sent: let their notifications go."""
        with self._lock:
            fresh, self._unannounced = self._unannounced, []
        for subscription in fresh:
            subscription.ready.set()

    async def deliver(self, send: Callable[[Any], Awaitable[None]]) -> None:
        """Send each subscription's notifications, in the order the feed told them."""
        while True:
            subscription, value = await self._events.get()
            await subscription.ready.wait()
            if subscription.closed:
                continue
            try:
                results = await run_in_threadpool(subscription.results, value)
            except RpcError:
                continue  # what the feed announced is gone (reverted)
            except Exception:  # a bug: log it, keep the connection's other subscriptions alive
                _log.exception("eth_subscription %s (%s) failed", subscription.id, subscription.kind)
                continue
            for result in results:
                if subscription.closed:
                    break
                try:
                    await send(
                        {
                            "jsonrpc": "2.0",
                            "method": "eth_subscription",
                            "params": {"subscription": subscription.id, "result": result},
                        }
                    )
                except WebSocketDisconnect:
                    return  # the client is gone; the request loop hears it and closes

    def close(self) -> None:
        with self._lock:
            self._closed = True
            subscriptions = list(self._subscriptions.values())
            self._subscriptions.clear()
        for subscription in subscriptions:
            subscription.close()
