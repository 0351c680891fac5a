"""Hostile and careless input at the JSON-RPC boundary: a clear error, never a crash,
a traceback, or a lock held for minutes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from hydrogen_harness.boundary.json_guard import MAX_BODY_BYTES, JsonRefused, loads_bounded, nesting_depth
from hydrogen_harness.jsonrpc.dev import MAX_MINE
from tests.sandbox.conftest import ServedChain, run_async
from tests.sandbox.test_rpc_server import post

DEEP = 100_000  # deep enough to overflow the C stack under py-evm's recursion limit


def call(s: ServedChain, method: str, params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = post(s.url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return answer


def alive(s: ServedChain) -> bool:
    return call(s, "eth_blockNumber", [])["result"].startswith("0x")


def test_nesting_is_measured_outside_strings() -> None:
    assert nesting_depth(b'{"a": [[1], {"b": "[[[[["}]}') == 3
    assert nesting_depth(b'"\\"[[[["') == 0
    with pytest.raises(JsonRefused, match="nests 65 levels"):
        loads_bounded("[" * 65 + "]" * 65)
    assert loads_bounded("[" * 64 + "]" * 64) is not None


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP,
        ('{"jsonrpc":"2.0","id":1,"method":"eth_call","params":' + "[" * DEEP + "]" * DEEP + "}").encode(),
        ('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[],"x":' + "{\"a\":" * DEEP + "1" + "}" * DEEP + "}").encode(),
    ],
    ids=["bare", "in-params", "objects"],
)
def test_deeply_nested_json_is_refused_and_the_server_lives(served_chain: ServedChain, body: bytes) -> None:
    answer = httpx.post(served_chain.url, content=body, headers={"content-type": "application/json"}, timeout=30).json()
    assert answer["error"]["code"] == -32700
    assert "nests" in answer["error"]["message"]
    assert alive(served_chain)


def test_deeply_nested_json_over_websocket(served_chain: ServedChain) -> None:
    async def go() -> dict[str, Any]:
        async with websockets.connect(served_chain.url.replace("http://", "ws://"), max_size=None) as socket:
            await socket.send("[" * DEEP)
            answer: dict[str, Any] = json.loads(await socket.recv())
            await socket.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []}))
            assert json.loads(await socket.recv())["result"].startswith("0x")
            return answer

    answer = run_async(go())
    assert answer["error"]["code"] == -32700 and "nests" in answer["error"]["message"]
    assert alive(served_chain)


def test_a_body_over_the_limit_is_refused(served_chain: ServedChain) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":["' + b"a" * MAX_BODY_BYTES + b'"]}'
    response = httpx.post(served_chain.url, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413
    assert "at most" in response.json()["error"]["message"]
    assert alive(served_chain)


ADDRESS = "0x" + "11" * 20
BAD_PARAMS = [
    ("eth_feeHistory", ["0x2", "latest", ["a"]]),
    ("eth_feeHistory", ["0x2", "latest", [None]]),
    ("eth_feeHistory", ["0x2", "latest", 5]),
    ("eth_feeHistory", ["0x2", "latest", [50, 10]]),
    ("eth_getStorageAt", [ADDRESS, "xyz", "latest"]),
    ("eth_call", [{"to": ADDRESS, "accessList": ["x"]}]),
    ("eth_call", [{"to": ADDRESS, "accessList": [{"address": ADDRESS, "storageKeys": "zz"}]}]),
    ("eth_call", ["not an object"]),
    ("eth_getBalance", [ADDRESS, "9" * 5000]),
    ("eth_getLogs", [{"topics": "x"}]),
    ("eth_getLogs", [{"topics": [["zz"]]}]),
    ("eth_getBlockByNumber", [{"blockHash": 5}, False]),
    ("eth_getBlockByNumber", ["latest", "yes"]),
    ("eth_getTransactionReceipt", ["0x1234"]),
    ("eth_sendRawTransaction", [12]),
    ("evm_increaseTime", ["soon"]),
    ("evm_setAutomine", ["yes"]),
]


@pytest.mark.parametrize(("method", "params"), BAD_PARAMS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(BAD_PARAMS)])
def test_bad_params_are_invalid_params_not_internal_errors(served_chain: ServedChain, method: str, params: Any) -> None:
    error = call(served_chain, method, params)["error"]
    assert error["code"] == -32602, error
    assert "internal" not in error["message"]


def test_mining_many_blocks_at_once_is_bounded(served_chain: ServedChain) -> None:
    head = int(call(served_chain, "eth_blockNumber", [])["result"], 16)
    refused = call(served_chain, "anvil_mine", [hex(MAX_MINE + 1)])["error"]
    assert refused["code"] == -32000 and str(MAX_MINE) in refused["message"]
    assert call(served_chain, "evm_mine", [{"blocks": MAX_MINE + 1}])["error"]["code"] == -32000
    assert int(call(served_chain, "eth_blockNumber", [])["result"], 16) == head
    assert call(served_chain, "anvil_mine", ["0x3"])["result"] is None
    assert int(call(served_chain, "eth_blockNumber", [])["result"], 16) == head + 3


def test_time_controls_refuse_values_that_would_break_the_chain(served_chain: ServedChain) -> None:
    """A timed wait that long overflowed the miner thread (which then mined nothing more);
    timestamps past 2**63 break go-ethereum clients."""
    head = int(call(served_chain, "eth_blockNumber", [])["result"], 16)
    assert "at most 86400" in call(served_chain, "evm_setIntervalMining", ["0xffffffffffffffff"])["error"]["message"]
    assert "2**63" in call(served_chain, "evm_mine", [hex(2**64)])["error"]["message"]
    assert "2**63" in call(served_chain, "evm_setNextBlockTimestamp", [hex(2**63)])["error"]["message"]
    assert int(call(served_chain, "eth_blockNumber", [])["result"], 16) == head
    assert call(served_chain, "evm_mine", [])["result"] == "0x0"  # the miner still mines
    assert int(call(served_chain, "eth_blockNumber", [])["result"], 16) == head + 1
