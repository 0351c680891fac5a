"""Differential tests: the same raw JSON-RPC requests sent to our endpoint and to anvil.

Both chains are built the same way (`conftest.chains`): the same contracts at the same
addresses, the same funded user, three joined nodes, the same block numbers, and anvil
runs with our chain id, so one signed transaction is the same bytes (and hash) on both.
Each test compares the answers' shapes (key sets), kinds (hex quantity, data, address,
null...) and values field by field, and fails on any difference not listed in ACCEPTED
below, which README's "JSON-RPC fidelity" section repeats.

Where anvil and geth disagree, geth (the node H-net ran on, and what execution-apis
specifies) is the reference, and the test says so.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from hydrogen_harness.protocol.constants import CNX
from tests.clients import wire
from tests.clients.conftest import Endpoint, Pair

ZERO32 = "0x" + "00" * 32
APPROVAL = "0x" + keccak(text="Approval(address,address,uint256)").hex()
TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
TASK_CREATED = "0x" + keccak(text="TaskCreated(uint256,address,address,bytes32,bytes32,uint256)").hex()
FEE = 10 * CNX
RECEIPT_WAIT = 10.0  # seconds a mined transaction's receipt may take to appear on a loaded machine


# ---------------------------------------------------------------- accepted differences


@dataclass(frozen=True)
class Accepted:
    """A difference between our answers and anvil's that we keep, and why."""

    what: str
    ours: str
    anvil: str
    why: str


ACCEPTED: dict[str, Accepted] = {
    "client-version": Accepted(
        "web3_clientVersion", "hydrogen-harness/v0.1.0/python/eth-tester", "anvil/v1.7.1",
        "it names the node; clients only display it."),
    "chain-id": Accepted(
        "eth_chainId / net_version defaults", "131277322940537 (eth-tester's)", "31337",
        "not a difference in these tests: anvil is started with our chain id so that one signed "
        "transaction is valid on both; apps read the id from the node."),
    "gas-price": Accepted(
        "eth_gasPrice, eth_maxPriorityFeePerGas values", "1 wei, 0", "base fee + 1 gwei, 1 gwei",
        "PROTOCOL.md 7: H-net's node pays 1 wei, so the sandbox's base fee and minimum price are 1 wei "
        "and its suggested tip is 0; both are suggestions of the right kind (hex quantities)."),
    "chain-history": Accepted(
        "block hash, parentHash, stateRoot, mixHash (prevrandao), size, timestamp; blockHash of "
        "transactions, receipts and logs", "our chain's", "anvil's",
        "two chains built independently (different faucets, clocks and prevrandao) commit to different "
        "states and times; block numbers, transaction hashes, roots of the same transactions and "
        "receipts, gas and logs are compared and equal."),
    "parent-beacon-root": Accepted(
        "parentBeaconBlockRoot", "the empty-trie root (py-evm)", "zero hash",
        "there is no beacon chain on a dev node; no client reads it outside consensus code."),
    "timestamps": Accepted(
        "block timestamps", "strictly increasing, near wall time; genesis fixed at 2023-11-15", "anvil's "
        "clock; automined blocks share a timestamp", "blocks must have increasing timestamps on a real "
        "chain (geth refuses equal ones); anvil's equal timestamps are its own."),
    "selection": Accepted(
        "createTask's TaskCreated selectedNode topics, gasUsed and eth_estimateGas of createTask",
        "depend on our block hashes", "depend on anvil's",
        "PROTOCOL.md 2.4: the pick uses the previous block's hash, which differs (chain-history); "
        "both estimates must suffice, which is checked instead."),
    "filter-ids": Accepted(
        "filter ids", "a counter (0x1, 0x2...)", "random 128-bit", "opaque quantities to clients."),
    "anvil-extra-fields": Accepted(
        "blockTimestamp on transactions and receipts, blobGasPrice on receipts of non-blob "
        "transactions", "absent", "present",
        "not in execution-apis' transaction and receipt schemas (additionalProperties: false) and not "
        "sent by geth. (blockTimestamp on logs is in the schema: see test_logs_carry_block_timestamp.)"),
    "pending-block": Accepted(
        "hash, nonce, miner of the pending block", "null", "filled in",
        "geth nulls them: the pending block has no final header; clients treat it so."),
    "error-words": Accepted(
        "error messages", "geth's words", "anvil's (serde's) words",
        "only codes and the words clients match on are compared: 'execution reverted: <reason>' with "
        "the Error(string) data, 'nonce too low', 'already known', 'replacement transaction "
        "underpriced', 'insufficient funds', 'filter not found'."),
    "error-codes-geth": Accepted(
        "error codes for nonce too low and already known (-32000 vs -32003); a revert without data "
        "(-32000 'execution reverted' without data vs code 3 with data 0x); a block past the head in "
        "eth_call (-32000 'header not found' vs -32602); undecodable raw transactions (-32000 vs "
        "-32602); dev methods given a past timestamp (-32000 vs -32602)", "geth's", "anvil's",
        "geth is the reference (H-net ran on it); ethers and web3 classify these by words, not codes."),
    "logs-range-end": Accepted(
        "eth_getLogs with toBlock past the head (fromBlock within it)", "-32602 'block range extends "
        "beyond current head block'", "read up to the head",
        "geth's answer (execution-apis' filter-error-future-block-range); a range that starts past the "
        "head is -32602 on both (checked)."),
    "logs-reversed-range": Accepted(
        "eth_getLogs with fromBlock > toBlock", "-32000 'invalid block range params'", "[]",
        "geth's answer (execution-apis test filter-error-reversed-block-range)."),
    "fee-history-edges": Accepted(
        "eth_feeHistory with blockCount 0, with percentiles not increasing, and its reward key when "
        "no percentiles are asked", "empty answer; an error; no reward key", "one block; accepted; reward: []",
        "geth's answers (it validates percentiles and omits an empty reward)."),
    "filter-history": Accepted(
        "eth_newFilter with a past fromBlock, first eth_getFilterChanges", "logs of blocks mined since the "
        "filter was installed", "also every older log from fromBlock",
        "geth's semantics: a filter's changes are new logs; eth_getFilterLogs reads the range (equal "
        "on both)."),
    "price-bump": Accepted(
        "a same-nonce replacement paying less than 10% more", "refused: 'replacement transaction "
        "underpriced'", "accepted", "geth's txpool rule (PriceBump 10%), which real clients meet."),
    "pool-address-case": Accepted(
        "txpool_content/txpool_inspect sender keys and inspect's 'to'", "checksummed", "lower case",
        "geth writes common.Address.Hex(), checksummed; the same address either way."),
    "accounts": Accepted(
        "eth_accounts, eth_sendTransaction, eth_sign", "[]; refused (-32000 unknown account / "
        "-32601)", "ten unlocked dev accounts", "the sandbox holds no keys: apps sign, as on a real "
        "network (a dev node's unlocked accounts would let an app pass here and fail on H-net)."),
    "estimate-without-funds": Accepted(
        "eth_estimateGas of a value transfer from an account that cannot pay the value",
        "an error (checked against geth's words in test_estimate_without_funds_uses_geths_words)",
        "0x5208", "geth refuses it ('insufficient funds for transfer'); anvil short-cuts plain transfers."),
    "estimate-precision": Accepted(
        "eth_estimateGas values", "geth's binary search, stopped within 1.5% of the least gas that "
        "works", "the least gas that works", "geth's own tolerance (estimateGasErrorRatio); both suffice, "
        "which is checked by mining with our estimate."),
    "parse-error": Accepted(
        "a body that is not JSON", "-32700 parse error", "-32600 invalid request", "-32700 is JSON-RPC "
        "2.0's code and geth's answer."),
    "time-offset": Accepted(
        "evm_increaseTime's answer after an evm_revert", "the seconds added in all", "its clock's offset, "
        "which anvil also resets when it reverts", "on a fresh chain both answer the seconds added in all; "
        "each call adds the same on both (checked)."),
    "pending-gas-price": Accepted(
        "gasPrice of a pending EIP-1559 transaction", "its maxFeePerGas", "base fee + tip",
        "geth's rule (newRPCTransaction): the effective price once mined, the fee cap before; mined "
        "transactions agree (checked)."),
    "block-forming": Accepted(
        "which block a promoted (formerly queued) transaction lands in", "the gap-filling transaction's "
        "block", "the same or the next", "ours forms blocks from everything executable; both mine both, "
        "in nonce order."),
}  # fmt: skip


# ---------------------------------------------------------------- helpers


def approve_data(pair: Pair, amount: int) -> str:
    return str(pair.deployment.token.contract.encode_abi("approve", [pair.deployment.task.address, amount]))


def create_task_data(pair: Pair, seed: int) -> str:
    task_hash = keccak(text=f"differential task {seed}")
    return str(pair.deployment.task.contract.encode_abi("createTask", [task_hash, bytes(32)]))


def send(pair: Pair, raw: str, *, mined: bool = True) -> str:
    """Send the same signed transaction to both; both must take it, with the same hash.
    With `mined`, wait until both have mined it (anvil answers before its block is in)."""
    ours, anvil = pair.both("eth_sendRawTransaction", raw)
    assert "result" in ours and "result" in anvil, f"ours {ours}, anvil {anvil}"
    assert ours["result"] == anvil["result"]
    if mined:
        receipts(pair, ours["result"])
    return str(ours["result"])


def drain(endpoint: Endpoint, filter_id: str, want: int, timeout: float = RECEIPT_WAIT) -> list[Any]:
    """eth_getFilterChanges until `want` items came (bounded): anvil hands a new block to
    its filters a moment after the block is visible."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        seen += endpoint.result("eth_getFilterChanges", filter_id)
        if len(seen) >= want or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)  # polling interval of a bounded wait


def receipt(endpoint: Endpoint, tx_hash: str, timeout: float = RECEIPT_WAIT) -> dict[str, Any]:
    """The receipt, polled until it is there (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = endpoint.result("eth_getTransactionReceipt", tx_hash)
        if found is not None:
            return dict(found)
        if time.monotonic() > deadline:
            raise AssertionError(f"{endpoint.name}: no receipt for {tx_hash} within {timeout} s")
        time.sleep(0.02)  # polling interval of a bounded wait


def receipts(pair: Pair, tx_hash: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return receipt(pair.ours, tx_hash), receipt(pair.anvil, tx_hash)


def compare_logs(ours: list[dict[str, Any]], anvil: list[dict[str, Any]], where: str) -> list[str]:
    problems = [] if len(ours) == len(anvil) else [f"{where}: ours {len(ours)} logs, anvil {len(anvil)}"]
    for i, (a, b) in enumerate(zip(ours, anvil)):
        problems += wire.compare(a, b, wire.LOG, f"{where}[{i}]", may_differ={"blockHash", "blockTimestamp"},
                                 anvil_only={"blockTimestamp"})  # fmt: skip
    return problems


def without_pick(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TaskCreated logs without their third topic, selectedNode: the pick (ACCEPTED["selection"])."""
    return [{**log, "topics": log["topics"][:2]} if log["topics"][:1] == [TASK_CREATED] else log for log in logs]


def compare_receipts(ours: dict[str, Any], anvil: dict[str, Any], where: str, *, may_differ: set[str] = set()) -> list[str]:
    problems = wire.compare(
        ours, anvil, wire.RECEIPT, where,
        may_differ={"blockHash", "logs"} | may_differ,
        anvil_only={"blockTimestamp", "blobGasPrice"},  # ACCEPTED["anvil-extra-fields"]
    )  # fmt: skip
    if "logs" not in may_differ:
        problems += compare_logs(ours["logs"], anvil["logs"], f"{where}.logs")
    return problems


def compare_transactions(ours: dict[str, Any], anvil: dict[str, Any], where: str) -> list[str]:
    return wire.compare(
        ours, anvil, wire.TRANSACTION, where,
        may_differ={"blockHash"},  # ACCEPTED["chain-history"]
        anvil_only={"blockTimestamp"},  # ACCEPTED["anvil-extra-fields"]
    )  # fmt: skip


BLOCK_DIFFER = {"hash", "parentHash", "stateRoot", "mixHash", "size", "timestamp", "parentBeaconBlockRoot", "transactions"}


def compare_blocks(ours: dict[str, Any], anvil: dict[str, Any], where: str, *, pending: bool = False) -> list[str]:
    differ = BLOCK_DIFFER | ({"hash", "nonce", "miner"} if pending else set())  # ACCEPTED["pending-block"]
    problems = wire.compare(ours, anvil, wire.PENDING_BLOCK if pending else wire.BLOCK, where, may_differ=differ)
    txs_a, txs_b = ours["transactions"], anvil["transactions"]
    if len(txs_a) != len(txs_b):
        return problems + [f"{where}.transactions: ours {len(txs_a)}, anvil {len(txs_b)}"]
    for i, (a, b) in enumerate(zip(txs_a, txs_b)):
        if isinstance(a, dict) and isinstance(b, dict):
            problems += compare_transactions(a, b, f"{where}.transactions[{i}]")
        elif a != b:
            problems.append(f"{where}.transactions[{i}]: ours {a} != anvil {b}")
    return problems


def error_of(answer: dict[str, Any], request: str) -> dict[str, Any]:
    assert "error" in answer, f"{request}: expected an error, got {answer}"
    error: dict[str, Any] = answer["error"]
    return error


def describe(method: str, params: list[Any], ours: Any, anvil: Any) -> str:
    return f"request {method} {json.dumps(params)[:300]}\n  ours:  {json.dumps(ours)[:400]}\n  anvil: {json.dumps(anvil)[:400]}"


# ---------------------------------------------------------------- identity and fees


def test_chain_identity(pair: Pair) -> None:
    for method in ("eth_chainId", "net_version", "eth_blockNumber", "eth_syncing", "net_listening"):
        ours, anvil = pair.results(method)
        assert ours == anvil, describe(method, [], ours, anvil)
    ours, anvil = pair.results("web3_clientVersion")
    assert isinstance(ours, str) and isinstance(anvil, str)  # ACCEPTED["client-version"]
    ours, anvil = pair.results("eth_accounts")
    assert ours == [] and len(anvil) == 10  # ACCEPTED["accounts"]: the sandbox holds no keys
    assert int(pair.ours.result("eth_chainId"), 16) == pair.chain_id


def test_fee_suggestions_are_quantities(pair: Pair) -> None:
    for method in ("eth_gasPrice", "eth_maxPriorityFeePerGas"):
        ours, anvil = pair.results(method)
        # ACCEPTED["gas-price"]: the values differ, the kind may not.
        assert wire.Q in wire.kind_of(ours) and wire.Q in wire.kind_of(anvil), describe(method, [], ours, anvil)
    assert int(pair.ours.result("eth_gasPrice"), 16) >= 1


def test_fee_history_values(pair: Pair) -> None:
    nonce = pair.nonce()
    for i in range(3):  # blocks with gas used, tips paid
        send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, i + 1), nonce=nonce + i, tip=7))
    params = ["0x4", "latest", [10, 50, 90]]
    ours, anvil = pair.results("eth_feeHistory", *params)
    for key in ("oldestBlock", "baseFeePerGas", "gasUsedRatio", "reward"):
        assert ours.get(key) == anvil.get(key), describe("eth_feeHistory", params, ours, anvil)
    assert ours["reward"][-1] == ["0x7", "0x7", "0x7"]  # each of the last blocks paid a 7 wei tip


def test_fee_history_edges_as_geth(pair: Pair) -> None:
    """ACCEPTED["fee-history-edges"]: geth's answers, where anvil is more lenient."""
    ours, anvil = pair.both("eth_feeHistory", "0x2", "latest", [75, 25])
    assert "error" in ours and "result" in anvil, describe("eth_feeHistory", ["0x2", "latest", [75, 25]], ours, anvil)
    ours, anvil = pair.both("eth_feeHistory", "0x0", "latest", [])
    assert ours["result"]["baseFeePerGas"] == [] and ours["result"]["gasUsedRatio"] == []
    ours, anvil = pair.both("eth_feeHistory", "0x1", "latest", [])
    assert "reward" not in ours["result"] and anvil["result"]["reward"] == []


def test_fee_history_has_the_blob_fields(pair: Pair) -> None:
    """geth (since Cancun) and anvil answer the blob fee fields too; ours omits them."""
    params = ["0x2", "latest", []]
    ours, anvil = pair.results("eth_feeHistory", *params)
    missing = sorted({"baseFeePerBlobGas", "blobGasUsedRatio"} - set(ours))
    assert not missing, f"missing {missing}\n" + describe("eth_feeHistory", params, ours, anvil)
    assert ours["baseFeePerBlobGas"] == anvil["baseFeePerBlobGas"]
    assert ours["blobGasUsedRatio"] == anvil["blobGasUsedRatio"]


# ---------------------------------------------------------------- blocks, transactions, receipts


def test_blocks_latest_by_number_by_hash_and_full(pair: Pair) -> None:
    nonce = pair.nonce()
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 5), nonce=nonce, legacy=True))
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 6), nonce=nonce + 1))
    problems: list[str] = []
    for full in (False, True):
        ours, anvil = pair.results("eth_getBlockByNumber", "latest", full)
        problems += compare_blocks(ours, anvil, f"latest(full={full})")
        number = ours["number"]
        by_number = pair.results("eth_getBlockByNumber", number, full)
        problems += compare_blocks(*by_number, f"{number}(full={full})")
        by_hash = pair.ours.result("eth_getBlockByHash", ours["hash"], full), pair.anvil.result(
            "eth_getBlockByHash", anvil["hash"], full
        )
        problems += compare_blocks(*by_hash, f"by hash(full={full})")
        assert by_hash[0] == ours and by_hash[1]["hash"] == anvil["hash"]
    earliest = pair.results("eth_getBlockByNumber", "earliest", False)
    problems += compare_blocks(*earliest, "earliest")
    assert problems == [], "\n".join(problems)
    # A block nobody has: null on both.
    assert pair.results("eth_getBlockByNumber", "0xffffff", False) == (None, None)
    assert pair.results("eth_getBlockByHash", "0x" + "ab" * 32, False) == (None, None)


def test_pending_transactions_and_block_then_mined(pair: Pair) -> None:
    nonce = pair.nonce()
    for endpoint in pair.endpoints:
        endpoint.result("evm_setAutomine", False)
    legacy = send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 1), nonce=nonce, legacy=True, fee=3 * 10**9), mined=False)
    dynamic = send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 2), nonce=nonce + 1, fee=2 * 10**9, tip=10**9), mined=False)
    problems: list[str] = []
    for tx_hash, name in ((legacy, "legacy"), (dynamic, "1559")):
        ours, anvil = pair.results("eth_getTransactionByHash", tx_hash)
        # ACCEPTED["pending-gas-price"]: a pending 1559 transaction's gasPrice is its fee cap (geth).
        problems += compare_transactions({**ours, "gasPrice": anvil["gasPrice"]}, anvil, f"pending {name}")
        assert ours["gasPrice"] == (ours.get("maxFeePerGas") or ours["gasPrice"])
        assert ours["blockHash"] is None and ours["blockNumber"] is None and ours["transactionIndex"] is None
        assert pair.results("eth_getTransactionReceipt", tx_hash) == (None, None)
    assert pair.results("eth_getTransactionCount", pair.user.address, "pending") == (hex(nonce + 2),) * 2
    ours, anvil = pair.results("eth_getBlockByNumber", "pending", False)
    problems += compare_blocks(ours, anvil, "pending", pending=True)
    assert ours["transactions"] == [legacy, dynamic]

    assert pair.results("evm_mine") == ("0x0", "0x0")
    for tx_hash, name in ((legacy, "legacy"), (dynamic, "1559")):
        ours, anvil = pair.results("eth_getTransactionByHash", tx_hash)
        problems += compare_transactions(ours, anvil, f"mined {name}")
        # Logs of two transactions in one block: test_log_index_counts_across_the_block's.
        problems += compare_receipts(*receipts(pair, tx_hash), f"receipt {name}", may_differ={"logs"})
    mined = pair.results("eth_getBlockByNumber", "latest", False)
    problems += compare_blocks(*mined, "mined")
    assert problems == [], "\n".join(problems)
    legacy_receipt, dynamic_receipt = receipt(pair.ours, legacy), receipt(pair.ours, dynamic)
    assert (legacy_receipt["type"], dynamic_receipt["type"]) == ("0x0", "0x2")
    assert legacy_receipt["effectiveGasPrice"] == hex(3 * 10**9)  # a legacy transaction pays its gas price
    assert dynamic_receipt["effectiveGasPrice"] == hex(1 + 10**9)  # base fee 1 wei + the tip


@pytest.mark.parametrize("state", ["pending", "mined"])
def test_block_with_full_transactions_of_both_types(pair: Pair, state: str) -> None:
    """A block holding an EIP-1559 and a legacy transaction (two clients sending at once:
    H-net's node sends legacy ones), asked for with full transactions."""
    nonce = pair.nonce()
    for endpoint in pair.endpoints:
        endpoint.result("evm_setAutomine", False)
    dynamic = send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 1), nonce=nonce), mined=False)
    legacy = send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 2), nonce=nonce + 1, legacy=True), mined=False)
    if state == "mined":
        pair.results("evm_mine")
    params = ["pending" if state == "pending" else "latest", True]
    ours, anvil = pair.both("eth_getBlockByNumber", *params)
    assert "result" in ours, describe("eth_getBlockByNumber", params, ours, anvil)
    problems = compare_blocks(ours["result"], anvil["result"], f"{state}(full)", pending=state == "pending")
    assert problems == [], "\n".join(problems)
    assert [t["hash"] for t in ours["result"]["transactions"]] == [dynamic, legacy]


def test_log_index_counts_across_the_block(pair: Pair) -> None:
    """logIndex is the log's position in its block (not in its transaction), in receipts,
    eth_getLogs and filters alike; clients key events by (block, logIndex)."""
    filters = pair.results("eth_newFilter", {"address": pair.deployment.token.address})
    nonce = pair.nonce()
    for endpoint in pair.endpoints:
        endpoint.result("evm_setAutomine", False)
    hashes = [send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, i + 1), nonce=nonce + i), mined=False) for i in range(3)]
    pair.results("evm_mine")
    problems: list[str] = []
    for i, tx_hash in enumerate(hashes):
        ours, anvil = receipts(pair, tx_hash)
        problems += compare_logs(ours["logs"], anvil["logs"], f"receipt {i}.logs")
    number = receipt(pair.ours, hashes[0])["blockNumber"]
    logs = pair.results("eth_getLogs", {"fromBlock": number, "toBlock": number})
    problems += compare_logs(*logs, "eth_getLogs")
    changes = [pair.ours.result("eth_getFilterChanges", filters[0]), drain(pair.anvil, filters[1], 3)]
    problems += compare_logs(*changes, "eth_getFilterChanges")
    assert problems == [], "\n".join(problems)
    assert [log["logIndex"] for log in logs[0]] == ["0x0", "0x1", "0x2"]


def test_receipts_of_a_call_a_creation_and_a_revert(pair: Pair) -> None:
    nonce = pair.nonce()
    # A reverted createTask (no allowance yet): status 0, no logs, the same gas on both.
    reverted = send(pair, pair.sign(to=pair.deployment.task.address, data=create_task_data(pair, 1), nonce=nonce, gas=400_000))
    approved = send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 3 * FEE), nonce=nonce + 1))
    # A contract creation whose code returns 42 to any call.
    init = "0x600a600c600039600a6000f3602a60005260206000f3"
    created = send(pair, pair.sign(to=None, data=init, nonce=nonce + 2, gas=100_000))
    problems: list[str] = []
    for tx_hash, name in ((reverted, "reverted"), (approved, "approve"), (created, "creation")):
        problems += compare_receipts(*receipts(pair, tx_hash), f"receipt {name}")
    block = pair.results("eth_getBlockReceipts", "latest")
    assert len(block[0]) == len(block[1]) == 1
    problems += compare_receipts(block[0][0], block[1][0], "eth_getBlockReceipts[0]")
    assert problems == [], "\n".join(problems)
    ours = receipt(pair.ours, reverted)
    assert ours["status"] == "0x0" and ours["logs"] == []
    approve_logs = receipt(pair.ours, approved)["logs"]
    assert [log["topics"][0] for log in approve_logs] == [APPROVAL]
    contract = receipt(pair.ours, created)["contractAddress"]
    assert pair.results("eth_call", {"to": contract, "data": "0x"}, "latest") == ("0x" + "00" * 31 + "2a",) * 2


def test_create_task_receipt_and_logs(pair: Pair) -> None:
    """createTask's receipt: Approval, Transfer, 3 TaskCreated, compared but for the pick."""
    nonce = pair.nonce()
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 3 * FEE), nonce=nonce))
    estimate = pair.results("eth_estimateGas", {"from": pair.user.address, "to": pair.deployment.task.address, "data": create_task_data(pair, 2)})
    gas = max(int(e, 16) for e in estimate)
    tx_hash = send(pair, pair.sign(to=pair.deployment.task.address, data=create_task_data(pair, 2), nonce=nonce + 1, gas=gas, legacy=True))
    ours, anvil = receipts(pair, tx_hash)
    # ACCEPTED["selection"]: the picked nodes (and so gas) differ; everything else is compared.
    problems = compare_receipts(ours, anvil, "createTask", may_differ={"gasUsed", "cumulativeGasUsed", "logsBloom", "logs"})
    problems += compare_logs(without_pick(ours["logs"]), without_pick(anvil["logs"]), "createTask.logs")
    assert problems == [], "\n".join(problems)
    assert [log["topics"][0] for log in ours["logs"]] == [APPROVAL, TRANSFER] + [TASK_CREATED] * 3
    for endpoint, found in ((pair.ours, ours), (pair.anvil, anvil)):
        assert found["status"] == "0x1", f"{endpoint.name}: createTask failed with the larger estimate, {gas}"


# ---------------------------------------------------------------- reverts and estimates


def test_reverts_in_call_and_estimate(pair: Pair) -> None:
    request = {"from": pair.user.address, "to": pair.deployment.task.address, "data": create_task_data(pair, 4)}
    for method, params in (("eth_call", [request, "latest"]), ("eth_call", [request]), ("eth_estimateGas", [request])):
        ours, anvil = pair.both(method, *params)
        ours_error, anvil_error = error_of(ours, method), error_of(anvil, method)
        assert ours_error == anvil_error, describe(method, params, ours, anvil)
        assert ours_error["code"] == 3 and ours_error["message"] == "execution reverted: Not enough allowance for task"
    transfer_from = pair.deployment.token.contract.encode_abi("transferFrom", [pair.deployment.task.address, pair.user.address, 1])
    ours, anvil = pair.both("eth_call", {"from": pair.user.address, "to": pair.deployment.token.address, "data": transfer_from}, "latest")
    assert ours == anvil, describe("eth_call", ["transferFrom"], ours, anvil)


def test_a_mined_revert_replays_with_its_reason(pair: Pair) -> None:
    """H-net's clients read a failed transaction's reason by replaying it at its block."""
    nonce = pair.nonce()
    data = create_task_data(pair, 5)
    tx_hash = send(pair, pair.sign(to=pair.deployment.task.address, data=data, nonce=nonce, gas=400_000))
    answers = []
    for endpoint in pair.endpoints:
        found = receipt(endpoint, tx_hash)
        assert found["status"] == "0x0"
        replay = {"from": pair.user.address, "to": pair.deployment.task.address, "data": data, "gas": hex(400_000)}
        answers.append(endpoint.answer("eth_call", replay, hex(int(found["blockNumber"], 16) - 1)))
    assert answers[0]["error"] == answers[1]["error"], describe("eth_call", ["replay"], *answers)


def test_estimates_suffice_on_both(pair: Pair) -> None:
    nonce = pair.nonce()
    for i in range(3):
        data = approve_data(pair, i + 1)
        request = {"from": pair.user.address, "to": pair.deployment.token.address, "data": data}
        ours, anvil = pair.results("eth_estimateGas", request)
        # ACCEPTED["estimate-precision"]: geth's search stops within 1.5% of the least gas that works.
        assert int(anvil, 16) <= int(ours, 16) <= int(anvil, 16) * 1.015, describe("eth_estimateGas", [request], ours, anvil)
        tx_hash = send(pair, pair.sign(to=pair.deployment.token.address, data=data, nonce=nonce + i, gas=int(ours, 16)))
        for found in receipts(pair, tx_hash):
            assert found["status"] == "0x1"
            assert int(found["gasUsed"], 16) <= int(ours, 16)


def test_call_and_estimate_ignore_the_nonce_field(pair: Pair) -> None:
    """geth runs eth_call/eth_estimateGas without nonce checks (SkipNonceChecks), and so does
    anvil. ethers puts the nonce it will use in its estimate (from a 250 ms cache, so it may
    be stale), and a NonceManager's next transaction then fails at the estimate."""
    nonce = pair.nonce()
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 1), nonce=nonce))
    request_base = {"from": pair.user.address, "to": pair.deployment.token.address, "data": approve_data(pair, 2)}
    problems = []
    for stale in (nonce, nonce + 5):  # one already used, one in the future
        request = {**request_base, "nonce": hex(stale)}
        for method in ("eth_estimateGas", "eth_call"):
            ours, anvil = pair.both(method, request)
            if "error" in ours or "error" in anvil:
                problems.append(describe(method, [request], ours, anvil))
    assert problems == [], "\n".join(problems)


def test_gas_below_intrinsic_is_reported_in_geths_words(pair: Pair) -> None:
    request = {"from": pair.user.address, "to": pair.deployment.task.address, "data": create_task_data(pair, 6), "gas": hex(21_000)}
    problems = []
    ours, anvil = pair.both("eth_estimateGas", request)
    # geth: -32000 "gas required exceeds allowance (21000)"; anvil: -32003 "... gas required exceeds allowance: 21000"
    if "gas required exceeds allowance" not in error_of(ours, "estimate")["message"] or ours["error"]["code"] not in (-32000, -32003):
        problems.append(describe("eth_estimateGas", [request], ours, anvil))
    ours, anvil = pair.both("eth_call", request, "latest")
    # geth: -32000 "intrinsic gas too low: have 21000, want ..."; anvil: "intrinsic gas too high -- ..."
    if "intrinsic gas too" not in error_of(ours, "call")["message"] or ours["error"]["code"] != -32000:
        problems.append(describe("eth_call", [request, "latest"], ours, anvil))
    assert problems == [], "\n".join(problems)


def test_errors_where_ours_follows_geth(pair: Pair) -> None:
    """ACCEPTED["error-codes-geth"]: geth's codes and words where anvil answers otherwise."""
    unknown_selector = {"from": pair.user.address, "to": pair.deployment.task.address, "data": "0xdeadbeef"}
    ours, anvil = pair.both("eth_call", unknown_selector, "latest")
    assert error_of(ours, "empty revert") == {"code": -32000, "message": "execution reverted"}
    assert error_of(anvil, "empty revert")["code"] == 3
    ours, anvil = pair.both("eth_call", unknown_selector, "0xffffff")
    assert error_of(ours, "past the head") == {"code": -32000, "message": "header not found"}
    assert "error" in anvil
    ours, anvil = pair.both("eth_sendRawTransaction", "0x1234")
    assert error_of(ours, "undecodable")["code"] == -32000 and "error" in anvil
    ours, anvil = pair.both("evm_setNextBlockTimestamp", "0x1")
    assert error_of(ours, "past timestamp")["code"] == -32000 and "error" in anvil


def test_estimate_without_funds_uses_geths_words(pair: Pair) -> None:
    """geth: "insufficient funds for transfer"; ethers maps "insufficient funds" to
    INSUFFICIENT_FUNDS. anvil answers 0x5208 (ACCEPTED["estimate-without-funds"])."""
    broke = "0x" + "42" * 20
    request = {"from": broke, "to": pair.user.address, "value": "0x1"}
    ours, anvil = pair.both("eth_estimateGas", request)
    assert "insufficient funds" in error_of(ours, "estimate")["message"], describe("eth_estimateGas", [request], ours, anvil)


def test_create_access_list(pair: Pair) -> None:
    """geth and anvil serve eth_createAccessList (viem's createAccessList; issue 11 names it)."""
    request = {"from": pair.user.address, "to": pair.deployment.token.address, "data": approve_data(pair, 9)}
    ours, anvil = pair.both("eth_createAccessList", request, "latest")
    assert "result" in ours, describe("eth_createAccessList", [request, "latest"], ours, anvil)
    assert set(ours["result"]) == set(anvil["result"]), describe("eth_createAccessList", [request], ours, anvil)
    assert ours["result"]["accessList"] == anvil["result"]["accessList"]


# ---------------------------------------------------------------- logs


@pytest.fixture
def logged(pair: Pair) -> tuple[Pair, int, int]:
    """Six blocks with logs on both chains: 2 approves, createTask (5 logs), 3 approves.
    Returns the pair and the first and last of those blocks."""
    first = int(pair.ours.result("eth_blockNumber"), 16) + 1
    nonce = pair.nonce()
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 1), nonce=nonce))
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 3 * FEE), nonce=nonce + 1))
    send(pair, pair.sign(to=pair.deployment.task.address, data=create_task_data(pair, 7), nonce=nonce + 2, gas=2_000_000))
    for i in range(3):
        send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 10 + i), nonce=nonce + 3 + i))
    last = int(pair.ours.result("eth_blockNumber"), 16)
    assert last == int(pair.anvil.result("eth_blockNumber"), 16) == first + 5
    return pair, first, last


def test_get_logs_ranges_topics_and_address_lists(logged: tuple[Pair, int, int]) -> None:
    pair, first, last = logged
    token, task = pair.deployment.token.address, pair.deployment.task.address
    user_topic = "0x" + "00" * 12 + pair.user.address[2:].lower()
    filters: list[dict[str, Any]] = [
        {"fromBlock": hex(first), "toBlock": hex(last)},
        {"fromBlock": hex(first), "toBlock": "latest", "address": [task, token], "topics": [[TASK_CREATED, APPROVAL]]},
        {"fromBlock": hex(first), "address": token},
        {"fromBlock": "earliest", "topics": [None, user_topic]},
        {"fromBlock": hex(first), "topics": [TASK_CREATED, None, None]},
        {"fromBlock": hex(first + 2), "toBlock": hex(first + 2), "topics": [TASK_CREATED]},
        {"fromBlock": hex(first), "address": []},
        {"fromBlock": hex(first), "topics": [[]]},
        {"fromBlock": "latest"},
        {"fromBlock": "pending", "toBlock": "pending"},
    ]
    problems: list[str] = []
    for flt in filters:
        ours, anvil = pair.results("eth_getLogs", flt)
        where = f"filter {json.dumps(flt)[:160]}"
        problems += compare_logs(without_pick(ours), without_pick(anvil), where)
    block_hash = pair.ours.result("eth_getBlockByNumber", hex(first + 2), False)["hash"]
    anvil_hash = pair.anvil.result("eth_getBlockByNumber", hex(first + 2), False)["hash"]
    by_hash = pair.ours.result("eth_getLogs", {"blockHash": block_hash}), pair.anvil.result("eth_getLogs", {"blockHash": anvil_hash})
    problems += compare_logs(without_pick(by_hash[0]), without_pick(by_hash[1]), "blockHash")
    assert problems == [], "\n".join(problems)
    assert len(by_hash[0]) == 5


def test_get_logs_errors(logged: tuple[Pair, int, int]) -> None:
    pair, first, last = logged
    unknown = {"blockHash": "0x" + "11" * 32}
    ours, anvil = pair.both("eth_getLogs", unknown)
    assert error_of(ours, "unknown hash")["code"] == error_of(anvil, "unknown hash")["code"] == -32000
    both_kinds = {"blockHash": "0x" + "11" * 32, "fromBlock": hex(first)}
    ours, anvil = pair.both("eth_getLogs", both_kinds)
    assert error_of(ours, "blockHash and fromBlock")["code"] == error_of(anvil, "blockHash and fromBlock")["code"], describe("eth_getLogs", [both_kinds], ours, anvil)
    # ACCEPTED["logs-reversed-range"]
    reversed_range = {"fromBlock": hex(last), "toBlock": hex(first)}
    ours, anvil = pair.both("eth_getLogs", reversed_range)
    assert error_of(ours, "reversed") == {"code": -32000, "message": "invalid block range params"}


@pytest.mark.parametrize("beyond", ["from", "both"])
def test_get_logs_starting_past_the_head_is_an_error(logged: tuple[Pair, int, int], beyond: str) -> None:
    """A range that starts past the head: -32602 from anvil and from geth (execution-apis'
    eth_getLogs tests filter-error-future-block-to-latest and -fully-future-block-range)."""
    pair, first, last = logged
    flt = {
        "from": {"fromBlock": hex(last + 5), "toBlock": "latest"},
        "both": {"fromBlock": hex(last + 5), "toBlock": hex(last + 9)},
    }[beyond]
    ours, anvil = pair.both("eth_getLogs", flt)
    assert error_of(anvil, "past the head")["code"] == -32602
    assert "error" in ours and ours["error"]["code"] == -32602, describe("eth_getLogs", [flt], ours, anvil)


def test_get_logs_ending_past_the_head_is_an_error_as_geth(logged: tuple[Pair, int, int]) -> None:
    """ACCEPTED["logs-range-end"]: geth refuses a range whose toBlock is past the head
    (execution-apis' filter-error-future-block-range: -32602 "block range extends beyond
    current head block"); anvil reads it up to the head."""
    pair, first, last = logged
    flt = {"fromBlock": hex(first), "toBlock": hex(last + 5)}
    ours, anvil = pair.both("eth_getLogs", flt)
    assert "result" in anvil
    assert "error" in ours and ours["error"]["code"] == -32602, describe("eth_getLogs", [flt], ours, anvil)
    assert "block range extends beyond current head block" in ours["error"]["message"]


def test_get_logs_refuses_more_than_four_topics(logged: tuple[Pair, int, int]) -> None:
    pair, first, _ = logged
    flt = {"fromBlock": hex(first), "topics": [TASK_CREATED, None, None, None, None]}
    ours, anvil = pair.both("eth_getLogs", flt)
    assert error_of(anvil, "5 topics")["code"] == -32602
    assert "error" in ours and ours["error"]["code"] == -32602, describe("eth_getLogs", [flt], ours, anvil)


def test_logs_carry_block_timestamp(logged: tuple[Pair, int, int]) -> None:
    """execution-apis#639 (geth 1.16, anvil, besu, erigon): each log has blockTimestamp,
    its block's timestamp, in eth_getLogs, receipts and filter answers."""
    pair, first, _ = logged
    flt = {"fromBlock": hex(first), "toBlock": hex(first)}
    ours, anvil = pair.results("eth_getLogs", flt)
    assert ours and "blockTimestamp" in anvil[0]
    block = pair.ours.result("eth_getBlockByNumber", hex(first), False)
    assert ours[0].get("blockTimestamp") == block["timestamp"], describe("eth_getLogs", [flt], ours, anvil)


# ---------------------------------------------------------------- filters


def test_log_filter_without_from_block_loses_nothing(pair: Pair) -> None:
    """eth_newFilter + eth_getFilterChanges as ethers' contract.on uses them: every log
    since the last poll, in order, each once, across several blocks between polls."""
    token = pair.deployment.token.address
    ids = pair.results("eth_newFilter", {"address": token})
    assert all(wire.Q in wire.kind_of(i) for i in ids)  # ACCEPTED["filter-ids"]
    nonce = pair.nonce()
    polls: tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]] = ([], [])
    amount = 0
    for burst in (3, 1, 0, 4):  # several blocks between polls, and a poll with nothing new
        for _ in range(burst):
            amount += 1
            send(pair, pair.sign(to=token, data=approve_data(pair, amount), nonce=nonce + amount - 1))
        for endpoint, filter_id, seen in zip(pair.endpoints, ids, polls):
            seen.append(endpoint.result("eth_getFilterChanges", filter_id))
    # Ours: each poll has exactly what was mined since the last one.
    assert [len(poll) for poll in polls[0]] == [3, 1, 0, 4], polls[0]
    ours = [log for poll in polls[0] for log in poll]
    assert [int(log["data"], 16) for log in ours] == list(range(1, amount + 1)), "lost or repeated logs"
    # anvil hands blocks to its filters a moment late: compare the whole sequences.
    anvil = [log for poll in polls[1] for log in poll]
    anvil += drain(pair.anvil, ids[1], amount - len(anvil))
    problems = compare_logs(ours, anvil, "all changes")
    assert problems == [], "\n".join(problems)
    # eth_getFilterLogs: the whole range (no fromBlock: latest only).
    logs = [e.result("eth_getFilterLogs", i) for e, i in zip(pair.endpoints, ids)]
    assert compare_logs(logs[0], logs[1], "eth_getFilterLogs") == []
    for endpoint, filter_id in zip(pair.endpoints, ids):
        assert endpoint.result("eth_uninstallFilter", filter_id) is True
        assert endpoint.result("eth_uninstallFilter", filter_id) is False
        gone = endpoint.answer("eth_getFilterChanges", filter_id)
        assert error_of(gone, "uninstalled")["message"] == "filter not found"


def test_log_filter_with_a_past_from_block(logged: tuple[Pair, int, int]) -> None:
    pair, first, last = logged
    flt = {"fromBlock": hex(first), "address": [pair.deployment.token.address]}
    ids = pair.results("eth_newFilter", flt)
    whole = [e.result("eth_getFilterLogs", i) for e, i in zip(pair.endpoints, ids)]
    assert compare_logs(*whole, "eth_getFilterLogs") == [] and len(whole[0]) == 7
    nonce = pair.nonce()
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 99), nonce=nonce))
    ours = pair.ours.result("eth_getFilterChanges", ids[0])
    anvil = drain(pair.anvil, ids[1], len(whole[1]) + 1)
    # ACCEPTED["filter-history"]: ours (geth) gives only the new block's log; anvil the history too.
    assert [int(log["data"], 16) for log in ours] == [99]
    assert compare_logs(ours, anvil[-1:], "newest change") == []


def test_block_and_pending_transaction_filters(pair: Pair) -> None:
    blocks = pair.results("eth_newBlockFilter")
    pending = pair.results("eth_newPendingTransactionFilter")
    nonce = pair.nonce()
    hashes = [send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, i + 1), nonce=nonce + i)) for i in range(3)]
    pair.results("evm_mine")
    new_blocks = pair.ours.result("eth_getFilterChanges", blocks[0]), drain(pair.anvil, blocks[1], 4)
    assert len(new_blocks[0]) == len(new_blocks[1]) == 4, new_blocks
    assert new_blocks[0][-1] == pair.ours.result("eth_getBlockByNumber", "latest", False)["hash"]
    new_pending = pair.ours.result("eth_getFilterChanges", pending[0]), drain(pair.anvil, pending[1], 3)
    assert new_pending[0] == new_pending[1] == hashes
    again = [e.result("eth_getFilterChanges", i) for e, i in zip(pair.endpoints, blocks)]
    assert again == [[], []]
    ours, anvil = pair.ours.answer("eth_getFilterLogs", blocks[0]), pair.anvil.answer("eth_getFilterLogs", blocks[1])
    assert error_of(ours, "block filter logs")["message"] == error_of(anvil, "block filter logs")["message"] == "filter not found"


# ---------------------------------------------------------------- the pool


def test_future_nonce_is_queued_until_the_gap_fills(pair: Pair) -> None:
    nonce = pair.nonce()
    token = pair.deployment.token.address
    later = send(pair, pair.sign(to=token, data=approve_data(pair, 2), nonce=nonce + 1), mined=False)
    assert pair.results("eth_getTransactionReceipt", later) == (None, None)
    assert pair.results("eth_getTransactionCount", pair.user.address, "pending") == (hex(nonce),) * 2
    assert pair.results("txpool_status") == ({"pending": "0x0", "queued": "0x1"},) * 2
    ours, anvil = pair.results("eth_getTransactionByHash", later)
    assert compare_transactions(ours, anvil, "queued") == []
    content = pair.results("txpool_content")
    queued = [next(iter(c["queued"].values()))[str(nonce + 1)] for c in content]
    assert compare_transactions(queued[0], queued[1], "txpool_content queued") == []

    first = send(pair, pair.sign(to=token, data=approve_data(pair, 1), nonce=nonce))
    for endpoint in pair.endpoints:
        found = [receipt(endpoint, first), receipt(endpoint, later)]
        assert [r["status"] for r in found] == ["0x1", "0x1"]
        # ACCEPTED["block-forming"]: in nonce order, same block or the next.
        assert int(found[0]["blockNumber"], 16) <= int(found[1]["blockNumber"], 16)
    assert pair.results("txpool_status") == ({"pending": "0x0", "queued": "0x0"},) * 2
    assert pair.results("eth_getTransactionCount", pair.user.address, "latest") == (hex(nonce + 2),) * 2


def test_txpool_shapes(pair: Pair) -> None:
    for endpoint in pair.endpoints:
        endpoint.result("evm_setAutomine", False)
    nonce = pair.nonce()
    token = pair.deployment.token.address
    send(pair, pair.sign(to=token, data=approve_data(pair, 1), nonce=nonce), mined=False)
    send(pair, pair.sign(to=token, data=approve_data(pair, 3), nonce=nonce + 2, legacy=True), mined=False)
    assert pair.results("txpool_status") == ({"pending": "0x1", "queued": "0x1"},) * 2
    ours, anvil = pair.results("txpool_content")
    assert set(ours) == set(anvil) == {"pending", "queued"}
    problems = []
    for section, key in (("pending", nonce), ("queued", nonce + 2)):
        # ACCEPTED["pool-address-case"]: compare the sender keys case-blind.
        a = {k.lower(): v for k, v in ours[section].items()}
        b = {k.lower(): v for k, v in anvil[section].items()}
        assert set(a) == set(b) == {pair.user.address.lower()}
        mine_a, mine_b = a[pair.user.address.lower()], b[pair.user.address.lower()]
        assert set(mine_a) == set(mine_b) == {str(key)}
        problems += compare_transactions(mine_a[str(key)], mine_b[str(key)], f"txpool_content.{section}")
    inspect = pair.results("txpool_inspect")
    for section in ("pending", "queued"):
        texts = [next(iter(i[section].values())) for i in inspect]
        assert {k: v.lower() for k, v in texts[0].items()} == {k: v.lower() for k, v in texts[1].items()}
    assert problems == [], "\n".join(problems)


def test_replacement_by_a_higher_fee(pair: Pair) -> None:
    token = pair.deployment.token.address
    send(pair, pair.sign(to=token, data=approve_data(pair, 7), nonce=pair.nonce()))  # a nonce to be too low
    for endpoint in pair.endpoints:
        endpoint.result("evm_setAutomine", False)
    nonce = pair.nonce()
    original = send(pair, pair.sign(to=token, data=approve_data(pair, 1), nonce=nonce, fee=10**9), mined=False)
    # ACCEPTED["price-bump"]: ours refuses a bump under 10% in geth's words; anvil takes it.
    cheap = pair.sign(to=token, data=approve_data(pair, 2), nonce=nonce, fee=10**9 + 1)
    ours = pair.ours.answer("eth_sendRawTransaction", cheap)
    assert error_of(ours, "underpriced") == {"code": -32000, "message": "replacement transaction underpriced"}
    replacement = send(pair, pair.sign(to=token, data=approve_data(pair, 3), nonce=nonce, fee=2 * 10**9), mined=False)
    assert pair.results("txpool_status") == ({"pending": "0x1", "queued": "0x0"},) * 2
    assert pair.results("eth_getTransactionCount", pair.user.address, "pending") == (hex(nonce + 1),) * 2
    too_low = pair.both("eth_sendRawTransaction", pair.sign(to=token, data="0x", nonce=nonce - 1, fee=2 * 10**9))
    assert all("nonce too low" in error_of(a, "nonce too low")["message"] for a in too_low)  # ACCEPTED["error-codes-geth"]
    again = pair.both("eth_sendRawTransaction", pair.sign(to=token, data=approve_data(pair, 3), nonce=nonce, fee=2 * 10**9))
    assert error_of(again[0], "already known")["message"] == "already known"
    assert "error" in again[1]
    pair.results("evm_mine")
    assert pair.results("eth_getTransactionReceipt", original) == (None, None)
    assert pair.results("eth_getTransactionByHash", original) == (None, None)
    problems = compare_receipts(*receipts(pair, replacement), "replacement")
    assert problems == [], "\n".join(problems)
    assert receipt(pair.ours, replacement)["status"] == "0x1"


# ---------------------------------------------------------------- errors


WRONG_TYPES: list[tuple[str, list[Any]]] = [
    ("eth_getBalance", ["0x12", "latest"]),
    ("eth_getBalance", ["0x" + "11" * 20, "yesterday"]),
    ("eth_getBlockByNumber", ["0x1", "yes"]),
    ("eth_getBlockByHash", ["0x12", False]),
    ("eth_call", [{"to": "0x" + "11" * 20, "data": "zz"}, "latest"]),
    ("eth_sendRawTransaction", [5]),
    ("eth_getLogs", [{"address": "0x12"}]),
    ("eth_getLogs", [{"topics": ["0x12"]}]),
    ("eth_getTransactionReceipt", ["0x1234"]),
    ("evm_setAutomine", ["no"]),
    ("evm_increaseTime", ["-5"]),
    ("eth_getBalance", []),
    ("eth_call", []),
    ("eth_getLogs", []),
    ("evm_revert", []),
]


@pytest.mark.parametrize(("method", "params"), WRONG_TYPES, ids=[f"{m}{p}"[:60] for m, p in WRONG_TYPES])
def test_bad_params_are_invalid_params(pair: Pair, method: str, params: list[Any]) -> None:
    ours, anvil = pair.both(method, *params)
    assert error_of(anvil, method)["code"] == -32602
    assert error_of(ours, method)["code"] == -32602, describe(method, params, ours, anvil)


def test_unknown_method_and_malformed_requests(pair: Pair) -> None:
    ours, anvil = pair.both("eth_noSuchMethod")
    assert error_of(ours, "unknown")["code"] == error_of(anvil, "unknown")["code"] == -32601
    for body, code in ((b"[]", -32600), (b'{"jsonrpc": "2.0", "id": 1}', -32600)):
        answers = [e.raw(body) for e in pair.endpoints]
        assert [a["error"]["code"] for a in answers] == [code, code], (body, answers)
    # ACCEPTED["parse-error"]: geth answers -32700 to a body that is not JSON; anvil -32600.
    assert pair.ours.raw(b"{not json")["error"]["code"] == -32700
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": []} for i in range(3)]).encode()
    answers = [e.raw(batch) for e in pair.endpoints]
    assert [sorted(a["id"] for a in answer) for answer in answers] == [[0, 1, 2]] * 2


MISSING_REQUIRED: list[tuple[str, list[Any]]] = [
    ("eth_getBlockByNumber", ["latest"]),
    ("eth_getBlockByHash", ["0x" + "ab" * 32]),
    ("eth_getBalance", ["0x" + "11" * 20]),
    ("eth_getTransactionCount", ["0x" + "11" * 20]),
    ("eth_getCode", ["0x" + "11" * 20]),
    ("eth_getStorageAt", ["0x" + "11" * 20, "0x0"]),
]


@pytest.mark.parametrize(("method", "params"), MISSING_REQUIRED, ids=[m for m, _ in MISSING_REQUIRED])
def test_missing_required_params_are_refused(pair: Pair, method: str, params: list[Any]) -> None:
    """geth ("missing value for required argument 1") and anvil refuse a call without its
    block tag or full-transactions flag; ours fills in a default, so code written against
    the sandbox would fail on a real node."""
    ours, anvil = pair.both(method, *params)
    assert error_of(anvil, method)["code"] == -32602
    assert "error" in ours and ours["error"]["code"] == -32602, describe(method, params, ours, anvil)


EXTRA_PARAMS: list[tuple[str, list[Any]]] = [
    ("eth_blockNumber", [1]),
    ("eth_chainId", ["latest"]),
    ("eth_gasPrice", [1]),
]


@pytest.mark.parametrize(("method", "params"), EXTRA_PARAMS, ids=[m for m, _ in EXTRA_PARAMS])
def test_extra_params_are_refused(pair: Pair, method: str, params: list[Any]) -> None:
    """geth: "too many arguments, want at most 0" (-32602); anvil -32602 too."""
    ours, anvil = pair.both(method, *params)
    assert error_of(anvil, method)["code"] == -32602
    assert "error" in ours and ours["error"]["code"] == -32602, describe(method, params, ours, anvil)


# ---------------------------------------------------------------- dev methods


def test_increase_time_returns_what_anvil_returns(pair: Pair) -> None:
    before = [int(e.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16) for e in pair.endpoints]
    first = pair.results("evm_increaseTime", "0x64")
    second = pair.results("evm_increaseTime", 901)
    # Both answer the clock's whole offset as a JSON number; ACCEPTED["time-offset"] for its base.
    assert all(isinstance(n, int) and not isinstance(n, bool) for n in first + second), (first, second)
    assert second[0] - first[0] == second[1] - first[1] == 901, (first, second)
    pair.results("evm_mine")
    after = [int(e.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16) for e in pair.endpoints]
    for start, end in zip(before, after):
        assert end - start >= 1001


def test_snapshot_and_revert(pair: Pair) -> None:
    snapshots = pair.results("evm_snapshot")
    assert all(wire.Q in wire.kind_of(s) for s in snapshots)
    number = pair.results("eth_blockNumber")
    balance = pair.results("eth_getBalance", pair.user.address, "latest")
    nonce = pair.nonce()
    send(pair, pair.sign(to=pair.deployment.token.address, data=approve_data(pair, 1), nonce=nonce))
    pair.results("evm_mine")
    assert [e.result("evm_revert", s) for e, s in zip(pair.endpoints, snapshots)] == [True, True]
    assert pair.results("eth_blockNumber") == number
    assert pair.results("eth_getBalance", pair.user.address, "latest") == balance
    assert pair.results("eth_getTransactionCount", pair.user.address, "pending") == (hex(nonce),) * 2
    assert pair.results("evm_revert", "0x7777") == (False, False)  # an unknown id: false, not an error


def test_a_snapshot_is_used_up_by_its_revert(pair: Pair) -> None:
    """anvil and Hardhat revert to a snapshot once: reverting to it again answers false."""
    snapshots = pair.results("evm_snapshot")
    pair.results("evm_mine")
    assert [e.result("evm_revert", s) for e, s in zip(pair.endpoints, snapshots)] == [True, True]
    pair.results("evm_mine")
    again = [e.answer("evm_revert", s) for e, s in zip(pair.endpoints, snapshots)]
    assert again[1]["result"] is False
    assert again[0].get("result") is False, describe("evm_revert", [snapshots[0]], again[0], again[1])


def test_readme_lists_every_accepted_difference() -> None:
    """README's "JSON-RPC fidelity" section repeats ACCEPTED, key by key, and no more."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## JSON-RPC fidelity", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- \*\*([a-z0-9-]+)\*\*:", section, flags=re.MULTILINE)
    assert sorted(listed) == sorted(ACCEPTED)
