"""The JSON-RPC endpoint's WebSocket (same port and path as HTTP): web3.py's
WebSocketProvider with its defaults, raw frames, and eth_subscribe as geth has it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import keccak
from web3 import AsyncWeb3, WebSocketProvider
from websockets.asyncio.client import ClientConnection, connect

from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.jsonrpc.feed import ChainFeed
from hydrogen_harness.protocol.constants import CNX
from tests.sandbox.conftest import ServedChain, run_async

TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
APPROVAL = "0x" + keccak(text="Approval(address,address,uint256)").hex()
GAS = 200_000
WAIT = 20.0  # seconds any one answer or notification may take on a loaded 2-core machine
HEADER_ONLY = {"transactions", "uncles", "withdrawals", "size", "totalDifficulty"}  # not in geth's header


def run(scenario: Coroutine[Any, Any, None]) -> None:
    run_async(asyncio.wait_for(scenario, 6 * WAIT))


def ws_url(s: ServedChain) -> str:
    return s.url.replace("http://", "ws://")


def post(url: str, payload: Any) -> Any:
    return httpx.post(url, json=payload, timeout=WAIT, verify=shared_tls_context()).json()


def request(request_id: int | str, method: str, *params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}


class Socket:
    """A plain JSON-RPC client on one WebSocket: answers by id, notifications kept in order."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.notifications: deque[dict[str, Any]] = deque()
        self._last_id = 0

    async def send(self, frame: str | bytes) -> Any:
        """Send one frame; its answer (notifications that come first are kept)."""
        await self.connection.send(frame)
        while True:
            message = await self._receive()
            if isinstance(message, dict) and message.get("method") == "eth_subscription":
                self.notifications.append(message)
            else:
                return message

    async def call(self, method: str, *params: Any) -> dict[str, Any]:
        self._last_id += 1
        answer: dict[str, Any] = await self.send(json.dumps(request(self._last_id, method, *params)))
        assert answer["id"] == self._last_id, answer
        return answer

    async def result(self, method: str, *params: Any) -> Any:
        answer = await self.call(method, *params)
        assert "result" in answer, answer
        return answer["result"]

    async def notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.popleft()
        message: dict[str, Any] = await self._receive()
        assert message.get("method") == "eth_subscription", message
        return message

    async def notifications_until(self, last: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Notifications in arrival order, up to the first for which `last` is true."""
        seen = [await self.notification()]
        while not last(seen[-1]):
            seen.append(await self.notification())
        return seen

    async def _receive(self) -> Any:
        return json.loads(await asyncio.wait_for(self.connection.recv(), WAIT))


@asynccontextmanager
async def socket(s: ServedChain) -> AsyncIterator[Socket]:
    async with connect(ws_url(s)) as connection:
        yield Socket(connection)


def results(notifications: list[dict[str, Any]], subscription: str) -> list[Any]:
    return [n["params"]["result"] for n in notifications if n["params"]["subscription"] == subscription]


@pytest.fixture
def app(served_chain: ServedChain) -> Any:
    account = Account.from_key(keccak(text="rpc-ws-test-app"))
    served_chain.contracts.fund(account.address, cnx=100 * CNX, eth=10**18)
    return account


def token_txs(s: ServedChain, sender: Any, calls: list[tuple[str, str, int]]) -> list[str]:
    """Signed raw token transactions ("transfer"/"approve", to, amount), nonces in order."""
    token = s.contracts.token
    nonce = s.w3.eth.get_transaction_count(sender.address, "pending")
    raws = []
    for offset, (function, to, amount) in enumerate(calls):
        data = getattr(token.contract.functions, function)(to, amount)._encode_transaction_data()
        tx = {"to": token.address, "data": data, "gas": GAS, "gasPrice": 1, "value": 0, "nonce": nonce + offset, "chainId": s.chain.chain_id}
        raws.append("0x" + sender.sign_transaction(tx).raw_transaction.hex())
    return raws


async def send_quickly(s: ServedChain, raws: list[str], waves: int = 1) -> list[str]:
    """Send the raw transactions over HTTP in `waves` (each a few blocks at least), the
    transactions of a wave all at once from as many threads, as a busy app would: the
    miner forms quick blocks of several transactions. Their hashes, in order."""

    def send(raw: str) -> str:
        answer = post(s.url, request(1, "eth_sendRawTransaction", raw))
        assert "result" in answer, answer
        return str(answer["result"])

    size = -(-len(raws) // waves)
    hashes: list[str] = []
    with ThreadPoolExecutor(max_workers=size) as senders:
        for begin in range(0, len(raws), size):
            wave = [asyncio.wrap_future(senders.submit(send, raw)) for raw in raws[begin : begin + size]]
            hashes += await asyncio.gather(*wave)
    return hashes


def head(s: ServedChain) -> int:
    return int(s.rpc.call("eth_blockNumber", []), 16)


# ---------------------------------------------------------------- web3.py, as apps use it


def test_web3_websocket_provider_with_its_defaults(served_chain: ServedChain, app: Any) -> None:
    """Block number, a transaction and a newHeads subscription through AsyncWeb3(WebSocketProvider(url))."""
    s = served_chain
    (raw,) = token_txs(s, app, [("transfer", s.contracts.task.address, CNX)])

    async def scenario() -> None:
        async with AsyncWeb3(WebSocketProvider(ws_url(s))) as w3:
            assert await w3.eth.block_number == head(s)
            assert await w3.eth.chain_id == s.chain.chain_id
            subscription = await w3.eth.subscribe("newHeads")
            tx_hash = await w3.eth.send_raw_transaction(raw)
            receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT, poll_latency=0.05)
            assert receipt["status"] == 1
            async for message in w3.socket.process_subscriptions():
                assert message["subscription"] == subscription
                if message["result"]["number"] == receipt["blockNumber"]:
                    assert message["result"]["hash"] == receipt["blockHash"]
                    break
            assert await w3.eth.unsubscribe(subscription) is True

    run(scenario())


# ---------------------------------------------------------------- the JSON-RPC envelope


def test_methods_answer_as_over_http_singly_and_in_batches(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    task = s.contracts.task
    no_allowance = task.contract.functions.createTask(b"\x11" * 32, b"\x00" * 32)._encode_transaction_data()
    requests = [
        request(1, "eth_chainId"),
        request("two", "eth_getBalance", app.address, "latest"),
        request(3, "eth_getBalance", "0x12"),  # invalid params
        request(4, "eth_nope"),  # no such method
        request(5, "eth_call", {"from": app.address, "to": task.address, "data": no_allowance}),  # revert data
        request(6, "eth_getBlockByNumber", "latest", True),
        {"jsonrpc": "2.0", "method": "eth_chainId"},  # a notification: no answer
        {"jsonrpc": "1.0", "id": 8, "method": "eth_chainId"},  # invalid request
    ]
    over_http: list[Any] = [post(s.url, r) if "id" in r else None for r in requests]
    assert over_http[4]["error"]["code"] == 3 and over_http[4]["error"]["data"].startswith("0x08c379a0")
    http_batch = post(s.url, requests)

    async def scenario() -> None:
        async with socket(s) as ws:
            for req, expected in zip(requests, over_http, strict=True):
                if expected is not None:
                    assert await ws.send(json.dumps(req)) == expected
            assert await ws.send(json.dumps(requests)) == http_batch == [a for a in over_http if a is not None]
            # Binary frames too: web3.py's WebSocketProvider sends its requests in binary frames.
            assert await ws.send(json.dumps(requests[0]).encode()) == over_http[0]

    run(scenario())


def test_a_frame_that_is_not_json_gets_a_parse_error_and_the_socket_stays_open(served_chain: ServedChain) -> None:
    async def scenario() -> None:
        async with socket(served_chain) as ws:
            for frame in ("{not json", b"\xff\xfe", ""):
                answer = await ws.send(frame)
                assert answer["id"] is None and answer["error"]["code"] == -32700, answer
            assert (await ws.send("[]"))["error"]["code"] == -32600  # an empty batch
            assert await ws.result("eth_chainId") == hex(served_chain.chain.chain_id)

    run(scenario())


def test_subscription_errors_as_geth_reports_them(served_chain: ServedChain) -> None:
    s = served_chain

    async def scenario() -> None:
        async with socket(s) as ws:
            unknown = await ws.call("eth_subscribe", "syncingz")
            assert unknown["error"] == {"code": -32601, "message": 'no "syncingz" subscription in eth namespace'}
            for params in ([], ["newHeads", {}], ["logs", True], ["logs", {"address": "0x12"}], ["newPendingTransactions", "yes"]):
                assert (await ws.call("eth_subscribe", *params))["error"]["code"] == -32602, params
            missing = await ws.call("eth_unsubscribe", "0x" + "ab" * 16)
            assert missing["error"] == {"code": -32000, "message": "subscription not found"}

    run(scenario())
    # Over HTTP there is nowhere to push to: geth's answer.
    refused = post(s.url, request(1, "eth_subscribe", "newHeads"))
    assert refused["error"] == {"code": -32001, "message": "notifications not supported"}


# ---------------------------------------------------------------- subscriptions


def test_new_heads_in_block_order_none_lost_each_after_its_block_is_visible(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    raws = token_txs(s, app, [("transfer", s.contracts.task.address, 1)] * 8)

    async def scenario() -> None:
        async with socket(s) as ws:
            subscription = await ws.result("eth_subscribe", "newHeads")
            # 16 random bytes as hex, readable as anvil's id and as geth's quantity.
            assert len(subscription) == 34 and subscription[2] != "0" and int(subscription, 16) > 0
            start = head(s)
            await send_quickly(s, raws, waves=3)
            end = head(s)
            assert end - start >= 3
            headers: list[dict[str, Any]] = []
            while not headers or int(headers[-1]["number"], 16) < end:
                message = await ws.notification()
                assert message.keys() == {"jsonrpc", "method", "params"} and message["jsonrpc"] == "2.0"
                assert message["params"]["subscription"] == subscription
                headers.append(message["params"]["result"])
                assert head(s) >= int(headers[-1]["number"], 16)
            assert [int(h["number"], 16) for h in headers] == list(range(start + 1, end + 1))
            for header in headers:
                block = post(s.url, request(1, "eth_getBlockByNumber", header["number"], False))["result"]
                assert header == {k: v for k, v in block.items() if k not in HEADER_ONLY}

    run(scenario())


def test_logs_subscription_delivers_exactly_the_matching_logs_in_order(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    token = s.contracts.token.address
    watched, other = Account.create().address, Account.create().address
    raws = token_txs(
        s,
        app,
        [("transfer", watched, 1), ("approve", watched, 5), ("transfer", other, 2), ("transfer", watched, 3)] * 3,
    )
    watched_topic = "0x" + "00" * 12 + watched[2:].lower()
    log_filter = {"address": token, "topics": [TRANSFER, None, watched_topic]}

    async def scenario() -> None:
        async with socket(s) as ws:
            matching = await ws.result("eth_subscribe", "logs", log_filter)
            everything = await ws.result("eth_subscribe", "logs")
            start = head(s)
            await send_quickly(s, raws, waves=3)
            end = head(s)
            assert end - start >= 3
            span = {"fromBlock": hex(start + 1), "toBlock": hex(end)}
            expected = s.rpc.call("eth_getLogs", [{**span, **log_filter}])
            every_log = s.rpc.call("eth_getLogs", [span])
            assert len(expected) == 6 and len(every_log) == 12
            # Both subscriptions hear each block in the order they were made, so when the
            # unfiltered one has its last log, the filtered one has had all of its own.
            last = {"subscription": everything, "result": every_log[-1]}
            seen = await ws.notifications_until(lambda n: n["params"] == last)
            assert results(seen, matching) == expected
            assert results(seen, everything) == every_log

    run(scenario())


def test_pending_transaction_hashes_and_full_transactions(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    raws = token_txs(s, app, [("transfer", s.contracts.task.address, 1)] * 3)

    async def scenario() -> None:
        async with socket(s) as ws:
            hashes = await ws.result("eth_subscribe", "newPendingTransactions")
            full = await ws.result("eth_subscribe", "newPendingTransactions", True)
            sent = await send_quickly(s, raws)
            seen = await ws.notifications_until(lambda n: n["params"]["subscription"] == full and n["params"]["result"]["hash"] == sent[-1])
            assert results(seen, hashes) == sent
            transactions = results(seen, full)
            assert [tx["hash"] for tx in transactions] == sent
            for tx in transactions:
                assert tx["from"] == app.address.lower() and tx["to"] == s.contracts.token.address.lower()
                assert (tx["blockHash"], tx["blockNumber"], tx["transactionIndex"]) == (None, None, None)

    run(scenario())


def test_block_announcements_skipped_repeated_or_replaced_by_a_revert(
    served_chain: ServedChain, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miner may announce only the last of several blocks, or one block twice, and
    evm_revert replaces blocks: each new block is still told once, in order."""
    s = served_chain
    feed = s.rpc.feed
    (raw,) = token_txs(s, app, [("transfer", s.contracts.task.address, 1)])

    async def scenario() -> None:
        async with socket(s) as ws:
            subscription = await ws.result("eth_subscribe", "newHeads")
            start = head(s)
            snapshot = await ws.result("evm_snapshot")
            held_back = threading.Event()  # the miner announces from its own thread

            def hold_back(number: int) -> None:
                if number == start + 3:
                    held_back.set()

            with monkeypatch.context() as patch:
                patch.setattr(feed, "publish_block", hold_back)
                await ws.result("anvil_mine", "0x3")
                assert await asyncio.to_thread(held_back.wait, WAIT)
            feed.publish_block(start + 3)  # the last of the three only
            feed.publish_block(start + 3)  # and again
            first = [(await ws.notification())["params"]["result"] for _ in range(3)]
            assert [int(h["number"], 16) for h in first] == [start + 1, start + 2, start + 3]
            assert await ws.result("evm_revert", snapshot) is True
            await send_quickly(s, [raw])  # mines a new block start + 1
            replacement = (await ws.notification())["params"]
            assert replacement["subscription"] == subscription
            assert int(replacement["result"]["number"], 16) == start + 1
            assert replacement["result"]["hash"] != first[0]["hash"]
            assert replacement["result"]["parentHash"] == first[0]["parentHash"]

    run(scenario())


def test_unsubscribe_stops_notifications(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    raws = token_txs(s, app, [("transfer", s.contracts.task.address, 1)] * 2)

    async def scenario() -> None:
        async with socket(s) as ws:
            dropped = await ws.result("eth_subscribe", "newHeads")
            kept = await ws.result("eth_subscribe", "newHeads")
            assert await ws.result("eth_unsubscribe", dropped) is True
            assert (await ws.call("eth_unsubscribe", dropped))["error"]["message"] == "subscription not found"
            await send_quickly(s, raws)
            end = head(s)
            seen = await ws.notifications_until(lambda n: int(n["params"]["result"]["number"], 16) == end)
            assert {n["params"]["subscription"] for n in seen} == {kept}

    run(scenario())


class FeedListeners:
    """Counts the listeners registered on a ChainFeed through its public methods, and
    lets a test wait (with a bound) for the count to reach a value."""

    def __init__(self, feed: ChainFeed, monkeypatch: pytest.MonkeyPatch) -> None:
        self.live = 0
        self._changed = threading.Condition()
        for name in ("on_block", "on_pending"):
            monkeypatch.setattr(feed, name, self._counted(getattr(feed, name)))

    def _counted(self, register: Callable[[Any], Callable[[], None]]) -> Callable[[Any], Callable[[], None]]:
        def counted_register(listener: Any) -> Callable[[], None]:
            unsubscribe = register(listener)
            self._change(+1)
            done = threading.Event()

            def counted_unsubscribe() -> None:
                unsubscribe()
                if not done.is_set():
                    done.set()
                    self._change(-1)

            return counted_unsubscribe

        return counted_register

    def _change(self, delta: int) -> None:
        with self._changed:
            self.live += delta
            self._changed.notify_all()

    def wait_for(self, live: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.live == live, WAIT)


def test_closing_the_socket_frees_its_feed_listeners(served_chain: ServedChain, monkeypatch: pytest.MonkeyPatch) -> None:
    s = served_chain
    feed = s.rpc.feed
    before = feed.listeners()
    listeners = FeedListeners(feed, monkeypatch)

    async def scenario() -> None:
        async with socket(s) as ws:
            for params in (["newHeads"], ["logs", {"address": s.contracts.token.address}], ["newPendingTransactions", True]):
                await ws.result("eth_subscribe", *params)
            assert listeners.live == 3
            assert feed.listeners() == (before[0] + 2, before[1] + 1)

    run(scenario())
    assert listeners.wait_for(0), f"{listeners.live} feed listeners left after the socket closed"
    assert feed.listeners() == before
