"""The served chain's transaction pool, block forming, mining modes and filters, as
geth/anvil behave: queued future nonces, replacement by fee, pending counts and
context, interval mining, a bounded lead over the wall clock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from hydrogen_harness.jsonrpc import logs as rpc_logs
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.jsonrpc.pool import MAX_LEAD
from tests.sandbox.conftest import ServedChain
from tests.sandbox.test_rpc_server import post

GWEI = 10**9


def rpc(s: ServedChain, method: str, *params: Any) -> Any:
    answer = post(s.url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    if "error" in answer:
        raise AssertionError(f"{method} -> {answer['error']}")
    return answer["result"]


def rpc_error(s: ServedChain, method: str, *params: Any) -> dict[str, Any]:
    answer = post(s.url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert "error" in answer, f"{method} answered {answer}"
    error: dict[str, Any] = answer["error"]
    return error


def signed(s: ServedChain, account: Any, nonce: int, *, to: str | None = None, value: int = 1, fee: int = GWEI, gas: int = 21_000, data: str = "0x", chain_id: int | None = None) -> str:
    tx = {
        "to": to or "0x" + "22" * 20,
        "value": value,
        "gas": gas,
        "maxFeePerGas": fee,
        "maxPriorityFeePerGas": fee,
        "nonce": nonce,
        "chainId": chain_id if chain_id is not None else s.w3.eth.chain_id,
        "data": data,
    }
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


@pytest.fixture
def sender(served_chain: ServedChain) -> Any:
    account = Account.from_key(keccak(text="pool-test-sender"))
    served_chain.contracts.fund(account.address, cnx=100 * CNX, eth=10**18)
    return account


def wait_blocks(s: ServedChain, count: int, timeout: float = 10.0) -> list[int]:
    """Block numbers announced by the miner, until `count` came (or the bound)."""
    seen: list[int] = []
    done = threading.Event()

    def note(number: int) -> None:
        seen.append(number)
        if len(seen) >= count:
            done.set()

    stop = s.rpc.feed.on_block(note)
    try:
        done.wait(timeout)
    finally:
        stop()
    return seen


def test_a_future_nonce_is_queued_and_mined_when_the_gap_fills(served_chain: ServedChain, sender: Any) -> None:
    s = served_chain
    later = rpc(s, "eth_sendRawTransaction", signed(s, sender, 1))
    assert rpc(s, "eth_getTransactionReceipt", later) is None
    assert rpc(s, "txpool_status") == {"pending": "0x0", "queued": "0x1"}
    queued = rpc(s, "txpool_content")["queued"][sender.address]["1"]
    assert queued["hash"] == later and queued["blockNumber"] is None
    assert rpc(s, "eth_getTransactionByHash", later)["blockHash"] is None
    assert rpc(s, "eth_getTransactionCount", sender.address, "pending") == "0x0"
    first = rpc(s, "eth_sendRawTransaction", signed(s, sender, 0))
    receipts = [s.w3.eth.wait_for_transaction_receipt(h, timeout=10, poll_latency=0.02) for h in (first, later)]
    assert [r["status"] for r in receipts] == [1, 1]
    assert receipts[0]["blockNumber"] <= receipts[1]["blockNumber"]
    assert rpc(s, "txpool_status") == {"pending": "0x0", "queued": "0x0"}
    assert rpc(s, "eth_getTransactionCount", sender.address, "latest") == "0x2"


def test_pending_transactions_count_and_a_higher_fee_replaces(served_chain: ServedChain, sender: Any) -> None:
    s = served_chain
    assert rpc(s, "evm_setAutomine", False) is None
    assert rpc(s, "anvil_getAutomine") is False
    first = rpc(s, "eth_sendRawTransaction", signed(s, sender, 0, fee=GWEI))
    rpc(s, "eth_sendRawTransaction", signed(s, sender, 1, fee=GWEI))
    assert rpc(s, "eth_getTransactionCount", sender.address, "pending") == "0x2"
    assert rpc(s, "eth_getTransactionCount", sender.address, "latest") == "0x0"
    cheap = rpc_error(s, "eth_sendRawTransaction", signed(s, sender, 0, fee=GWEI + GWEI // 20, value=2))
    assert cheap["message"] == "replacement transaction underpriced"
    again = rpc_error(s, "eth_sendRawTransaction", signed(s, sender, 0, fee=GWEI))
    assert again["message"] == "already known"
    better = rpc(s, "eth_sendRawTransaction", signed(s, sender, 0, fee=2 * GWEI, value=3))
    assert rpc(s, "txpool_status") == {"pending": "0x2", "queued": "0x0"}
    assert rpc(s, "evm_mine") == "0x0"
    block = s.w3.eth.get_block("latest")
    assert [h.hex() for h in block["transactions"]][0] == better[2:]
    assert len(block["transactions"]) == 2
    assert rpc(s, "eth_getTransactionByHash", first) is None  # replaced: gone
    low = rpc_error(s, "eth_sendRawTransaction", signed(s, sender, 1))
    assert low["message"] == "nonce too low: next nonce 2, tx nonce 1"


def test_pending_context_for_calls_and_estimates(served_chain: ServedChain, sender: Any) -> None:
    """An estimate of a call that depends on a pending transaction succeeds at "pending"
    (the default) and reverts at "latest"."""
    s = served_chain
    token = s.contracts.token
    spender = Account.from_key(keccak(text="pool-test-spender"))
    s.contracts.fund(spender.address, cnx=0, eth=10**18)
    rpc(s, "evm_setAutomine", False)
    approve = token.contract.functions.approve(spender.address, 5 * CNX)._encode_transaction_data()
    rpc(s, "eth_sendRawTransaction", signed(s, sender, 0, to=token.address, value=0, gas=100_000, data=approve))
    pull = token.contract.functions.transferFrom(sender.address, spender.address, 5 * CNX)._encode_transaction_data()
    call = {"from": spender.address, "to": token.address, "data": pull}
    estimate = int(rpc(s, "eth_estimateGas", call), 16)
    assert 30_000 < estimate < 100_000
    assert rpc_error(s, "eth_estimateGas", call, "latest")["message"] == "execution reverted: ERC20: insufficient allowance"
    assert rpc(s, "eth_call", {**call, "data": token.contract.functions.allowance(sender.address, spender.address)._encode_transaction_data()}, "pending") == "0x" + (5 * CNX).to_bytes(32, "big").hex()
    rpc(s, "evm_mine")
    assert rpc(s, "eth_estimateGas", {"from": sender.address, "to": spender.address, "value": "0x1"}) == hex(21_000)


def test_transactions_for_another_chain_are_refused(served_chain: ServedChain, sender: Any) -> None:
    s = served_chain
    for chain_id in (1, 999):
        error = rpc_error(s, "eth_sendRawTransaction", signed(s, sender, 0, chain_id=chain_id))
        assert error["message"] == f"invalid chain id for signer: have {chain_id} want {s.w3.eth.chain_id}"
    assert rpc(s, "txpool_status") == {"pending": "0x0", "queued": "0x0"}


def test_a_burst_shares_blocks_and_the_head_stays_near_the_clock(served_chain: ServedChain) -> None:
    s = served_chain
    senders = [Account.from_key(keccak(text=f"burst-{i}")) for i in range(8)]
    for account in senders:
        s.contracts.fund(account.address, cnx=0, eth=10**18)
    start = s.w3.eth.block_number

    def send_all(account: Any) -> list[str]:
        return [rpc(s, "eth_sendRawTransaction", signed(s, account, nonce)) for nonce in range(5)]

    with ThreadPoolExecutor(len(senders)) as pool:
        hashes = [h for batch in pool.map(send_all, senders) for h in batch]
    receipts = [s.w3.eth.get_transaction_receipt(h) for h in hashes]  # automine: mined when the hash came back
    assert all(r["status"] == 1 for r in receipts)
    blocks = s.w3.eth.block_number - start
    assert blocks < len(hashes)  # transactions that came while a block was mined went together
    head = s.w3.eth.get_block("latest")["timestamp"]
    assert head - s.clock.now() <= MAX_LEAD
    stamps = [s.w3.eth.get_block(n)["timestamp"] for n in range(start, s.w3.eth.block_number + 1)]
    assert stamps == sorted(set(stamps))  # strictly increasing


def test_interval_mining_lets_time_pass_on_an_idle_chain(served_chain: ServedChain) -> None:
    s = served_chain
    assert rpc(s, "evm_setIntervalMining", 1) is None
    assert rpc(s, "anvil_getIntervalMining") == 1.0
    blocks = wait_blocks(s, 2)
    assert len(blocks) == 2 and blocks[1] == blocks[0] + 1
    assert s.w3.eth.get_block(blocks[1])["transactions"] == []
    rpc(s, "evm_setIntervalMining", 0)


def test_increase_time_answers_as_anvil(served_chain: ServedChain) -> None:
    s = served_chain
    assert rpc(s, "evm_increaseTime", 901) == 901
    assert rpc(s, "evm_increaseTime", "0xa") == 911
    latest = s.w3.eth.get_block("latest")["timestamp"]
    rpc(s, "evm_mine")
    assert s.w3.eth.get_block("latest")["timestamp"] >= latest + 10
    too_far = rpc_error(s, "evm_increaseTime", 2**64)
    assert "2**63" in too_far["message"]


def test_a_log_filter_loses_nothing_between_polls(served_chain: ServedChain, sender: Any) -> None:
    s = served_chain
    token, task = s.contracts.token, s.contracts.task
    filter_id = rpc(s, "eth_newFilter", {"address": token.address})
    start = s.w3.eth.block_number
    for amount in (1, 2, 3):
        token.approve(sender, task.address, amount)
    assert s.w3.eth.block_number - start == 3
    changes = rpc(s, "eth_getFilterChanges", filter_id)
    assert [int(log["data"], 16) for log in changes] == [1, 2, 3]
    assert rpc(s, "eth_getFilterChanges", filter_id) == []
    bounded = rpc(s, "eth_newFilter", {"address": token.address, "fromBlock": hex(start + 1), "toBlock": hex(start + 2)})
    assert [int(log["data"], 16) for log in rpc(s, "eth_getFilterLogs", bounded)] == [1, 2]
    token.approve(sender, task.address, 4)
    assert rpc(s, "eth_getFilterChanges", bounded) == []  # beyond its toBlock


def test_pending_transaction_filter_and_expiry(served_chain: ServedChain, sender: Any) -> None:
    s = served_chain
    pending = rpc(s, "eth_newPendingTransactionFilter")
    hashes = [rpc(s, "eth_sendRawTransaction", signed(s, sender, n)) for n in range(2)]
    assert rpc(s, "eth_getFilterChanges", pending) == hashes
    assert rpc(s, "eth_getFilterChanges", pending) == []
    later = s.rpc.logs.now() + rpc_logs.FILTER_TIMEOUT + 1
    s.rpc.logs.now = lambda: later  # five minutes without a poll
    assert rpc_error(s, "eth_getFilterChanges", pending) == {"code": -32000, "message": "filter not found"}


def test_a_transaction_dropped_by_a_revert_has_no_receipt(served_chain: ServedChain, sender: Any) -> None:
    """Receipts are found through py-evm's index, which still names the reverted block's
    transaction: it must not be answered from the new block at that height."""
    s = served_chain
    snapshot = rpc(s, "evm_snapshot")
    dropped = rpc(s, "eth_sendRawTransaction", signed(s, sender, 0, value=5))
    assert rpc(s, "eth_getTransactionReceipt", dropped)["status"] == "0x1"
    assert rpc(s, "evm_revert", snapshot) is True
    kept = rpc(s, "eth_sendRawTransaction", signed(s, sender, 0, value=6))
    assert rpc(s, "eth_getTransactionReceipt", dropped) is None
    assert rpc(s, "eth_getTransactionByHash", dropped) is None
    assert rpc(s, "eth_getTransactionReceipt", kept)["transactionHash"] == kept


def test_a_revert_takes_the_clock_back_too(served_chain: ServedChain) -> None:
    """As on anvil: time added after a snapshot is gone after reverting to it."""
    s = served_chain
    snapshot = rpc(s, "evm_snapshot")
    assert rpc(s, "evm_increaseTime", 1000) == 1000
    rpc(s, "evm_mine")
    jumped = s.w3.eth.get_block("latest")["timestamp"]
    assert rpc(s, "evm_revert", snapshot) is True
    assert rpc(s, "evm_increaseTime", 1) == 1
    rpc(s, "evm_mine")
    assert s.w3.eth.get_block("latest")["timestamp"] < jumped - 900
