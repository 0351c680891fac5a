"""The sandbox's JSON-RPC endpoint, through web3.HTTPProvider and raw HTTP, as clients use it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import rlp
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from web3.exceptions import ContractLogicError

from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.protocol.constants import CNX
from tests.sandbox.conftest import ServedChain

HNET_GAS = 42_949_672  # the gas limit H-net's node and app put on every transaction
TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
APPROVAL = "0x" + keccak(text="Approval(address,address,uint256)").hex()


def post(url: str, payload: Any) -> Any:
    return httpx.post(url, json=payload, timeout=10, verify=shared_tls_context()).json()


def legacy_send(s: ServedChain, account: Any, to: str, data: str, gas: int = HNET_GAS) -> Any:
    """A legacy transaction as H-net's clients send it: ~43M gas at 1 wei."""
    tx = {
        "to": to,
        "data": data,
        "gas": gas,
        "gasPrice": 1,
        "value": 0,
        "nonce": s.w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": s.w3.eth.chain_id,
    }
    tx_hash = s.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return s.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)


@pytest.fixture
def app(served_chain: ServedChain) -> Any:
    account = Account.from_key(keccak(text="rpc-test-app"))
    served_chain.contracts.fund(account.address, cnx=100 * CNX, eth=10**18)
    return account


def test_identity_and_fees(served_chain: ServedChain) -> None:
    w3 = served_chain.w3
    assert w3.eth.chain_id == served_chain.chain.chain_id
    assert w3.net.version == str(served_chain.chain.chain_id)
    assert "hydrogen-harness" in w3.client_version
    assert w3.eth.gas_price == 1
    assert w3.eth.max_priority_fee == 0
    assert w3.eth.syncing is False
    assert w3.eth.accounts == []
    history = w3.eth.fee_history(3, "latest", [25, 75])
    assert history["baseFeePerGas"] == [1, 1, 1, 1]
    assert len(history["gasUsedRatio"]) == len(history["reward"]) == 3


def test_blocks_carry_their_true_hash(served_chain: ServedChain) -> None:
    """go-ethereum recomputes a block's hash from its header fields: they must be exact."""
    w3 = served_chain.w3
    block = w3.eth.get_block("latest", full_transactions=True)
    assert block["number"] == w3.eth.block_number
    assert w3.eth.get_block(block["hash"])["number"] == block["number"]
    assert block["transactions"][0]["hash"] == w3.eth.get_block("latest")["transactions"][0]
    fields = [
        block["parentHash"], block["sha3Uncles"], bytes.fromhex(block["miner"][2:]), block["stateRoot"],
        block["transactionsRoot"], block["receiptsRoot"], block["logsBloom"], block["difficulty"], block["number"],
        block["gasLimit"], block["gasUsed"], block["timestamp"], block["extraData"], block["mixHash"], block["nonce"],
        block["baseFeePerGas"], block["withdrawalsRoot"], block["blobGasUsed"], block["excessBlobGas"],
        block["parentBeaconBlockRoot"], block["requestsHash"],
    ]  # fmt: skip
    assert keccak(rlp.encode([bytes(f) if not isinstance(f, int) else f for f in fields])) == bytes(block["hash"])
    unknown = post(served_chain.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(10**6), False]})
    assert unknown["result"] is None


def test_balance_send_receipt_and_legacy_hnet_transactions(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    token = s.contracts.token
    assert s.w3.eth.get_balance(app.address) == 10**18
    assert s.w3.eth.get_code(token.address) != b""
    data = token.contract.functions.transfer(s.contracts.task.address, 5 * CNX)._encode_transaction_data()
    receipt = legacy_send(s, app, token.address, data)
    assert receipt["status"] == 1
    assert receipt["logs"][0]["topics"][0].hex() == TRANSFER[2:]
    assert int(bytes(receipt["logsBloom"]).hex(), 16) != 0
    tx = s.w3.eth.get_transaction(receipt["transactionHash"])
    assert (tx["type"], tx["gas"], tx["gasPrice"], tx["chainId"]) == (0, HNET_GAS, 1, s.w3.eth.chain_id)
    assert s.w3.eth.get_transaction_count(app.address, "pending") == 1
    assert token.balance_of(app.address) == 95 * CNX
    assert post(s.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": ["0x" + "ab" * 32]})["result"] is None


def test_views_need_no_sender_and_no_balance(served_chain: ServedChain) -> None:
    token = served_chain.w3.eth.contract(address=served_chain.contracts.token.address, abi=served_chain.contracts.token.abi)
    assert token.functions.totalSupply().call() == 4_351_443_962 * CNX
    poor = "0x" + "12" * 20
    assert token.functions.balanceOf(poor).call({"from": poor, "gas": HNET_GAS}) == 0


def test_revert_reason_from_replaying_the_failed_transaction(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    task = s.contracts.task
    data = task.contract.functions.createTask(b"\x11" * 32, b"\x00" * 32)._encode_transaction_data()
    receipt = legacy_send(s, app, task.address, data)
    assert receipt["status"] == 0 and receipt["logs"] == []
    payload = "0x08c379a0" + encode(["string"], ["Not enough allowance for task"]).hex()
    call = {"from": app.address, "to": task.address, "data": data, "gas": HNET_GAS, "gasPrice": 1}
    for block in (receipt["blockNumber"], receipt["blockNumber"] - 1):
        with pytest.raises(ContractLogicError) as caught:
            s.w3.eth.call(call, block)  # type: ignore[arg-type]
        assert caught.value.message == "execution reverted: Not enough allowance for task"
        assert caught.value.data == payload
    expected = {"code": 3, "message": "execution reverted: Not enough allowance for task", "data": payload}
    wire_call = {**call, "gas": hex(HNET_GAS), "gasPrice": "0x1"}
    raw = post(s.url, {"jsonrpc": "2.0", "id": 7, "method": "eth_call", "params": [wire_call, hex(receipt["blockNumber"])]})
    assert raw["error"] == expected
    unpriced = {"from": app.address, "to": task.address, "data": data}
    assert post(s.url, {"jsonrpc": "2.0", "id": 8, "method": "eth_estimateGas", "params": [unpriced]})["error"] == expected


def test_logs_with_an_address_list_null_topics_and_ranges(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    token, task = s.contracts.token, s.contracts.task
    token.approve(app, task.address, 30 * CNX)
    receiver = "0x" + "00" * 12 + app.address[2:].lower()
    everywhere = {"fromBlock": 0, "toBlock": "latest", "address": [token.address, task.address]}
    approvals = s.w3.eth.get_logs({**everywhere, "topics": [None, receiver]})  # the app as owner: its Approval
    assert [log["topics"][0].hex() for log in approvals] == [APPROVAL[2:]]
    funding = s.w3.eth.get_logs({**everywhere, "topics": [TRANSFER, None, receiver]})  # the app as receiver
    assert len(funding) == 1 and funding[0]["blockNumber"] < approvals[0]["blockNumber"]
    assert len(s.w3.eth.get_logs({**everywhere, "topics": [[TRANSFER, None]]})) >= 3  # null in a list: any event
    head = s.w3.eth.block_number
    beyond = post(s.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"fromBlock": hex(head + 1), "toBlock": hex(head + 500)}]})
    assert beyond["error"]["code"] == -32602  # as anvil: a client pages up to the head it has read
    wrong = post(s.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"fromBlock": "0x5", "toBlock": "0x2"}]})
    assert wrong["error"]["code"] == -32000


def test_filters(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    logs = s.w3.eth.filter({"address": s.contracts.token.address})
    blocks = s.w3.eth.filter("latest")
    s.contracts.token.approve(app, s.contracts.task.address, CNX)
    assert len(logs.get_new_entries()) == 1
    assert logs.get_new_entries() == []
    assert len(blocks.get_new_entries()) == 1
    assert len(s.w3.eth.get_filter_logs(logs.filter_id)) == 1  # from and to default to the latest block
    assert s.w3.eth.uninstall_filter(logs.filter_id) is True
    gone = post(s.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getFilterChanges", "params": [logs.filter_id]})
    assert gone["error"] == {"code": -32000, "message": "filter not found"}


def test_snapshot_revert_and_time(served_chain: ServedChain, app: Any) -> None:
    s = served_chain
    reverted = []
    s.rpc.on_revert.append(lambda: reverted.append(True))
    make = s.w3.provider.make_request
    head = s.w3.eth.block_number
    snapshot = make("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    s.contracts.token.transfer(app, s.contracts.task.address, CNX)
    latest = s.w3.eth.get_block("latest")["timestamp"]
    assert make("evm_increaseTime", [1000])["result"] >= 1000  # type: ignore[arg-type]
    assert make("evm_mine", [])["result"] == "0x0"  # type: ignore[arg-type]
    assert s.w3.eth.get_block("latest")["timestamp"] >= latest + 1000
    target = s.w3.eth.get_block("latest")["timestamp"] + 50
    assert make("evm_setNextBlockTimestamp", [target])["result"] is None  # type: ignore[arg-type]
    make("evm_mine", [])  # type: ignore[arg-type]
    assert s.w3.eth.get_block("latest")["timestamp"] == target
    make("anvil_mine", ["0x3", "0xa"])  # type: ignore[arg-type]
    assert s.w3.eth.get_block("latest")["timestamp"] >= target + 20
    past = make("evm_mine", [target])  # type: ignore[arg-type]
    assert "not after" in past["error"]["message"]
    assert make("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    assert s.w3.eth.block_number == head and reverted == [True]
    assert s.contracts.token.balance_of(app.address) == 100 * CNX


def test_json_rpc_envelope(served_chain: ServedChain) -> None:
    url = served_chain.url
    batch = post(url, [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"}])
    assert [a["id"] for a in batch] == [1, 2] and all("result" in a for a in batch)
    assert post(url, {"jsonrpc": "2.0", "id": 3, "method": "eth_nope", "params": []})["error"]["code"] == -32601
    assert post(url, {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0x12"]})["error"]["code"] == -32602
    assert httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}).json()["error"]["code"] == -32700
    assert httpx.post(url, json={"jsonrpc": "2.0", "method": "eth_chainId"}).status_code == 204  # a notification
