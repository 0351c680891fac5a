"""Wire compatibility with H-net (PROTOCOL.md 2): selectors, event topics, indexing.

The expected signatures are written out by hand from PROTOCOL.md; the compiled ABI
(hydrogen_harness.chain.compiler) must contain each with the same types, outputs, indexed flags
and (where PROTOCOL.md names them) field names.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from hydrogen_harness.chain.compiler import compile_contract
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.events import EventCodec
from hydrogen_harness.protocol.constants import CNX, ZERO_HASH
from tests.contracts.helpers import RunningTask

TASK_INFO = "(uint256,address,bytes32,bytes32,bool,address[],bytes32[],bytes32[],bytes[],uint256[],address,bool,uint256,uint256)"
TASK_INFO_NAMES = [
    "id", "creator", "taskHash", "dataHash", "isSuccess", "selectedNodes", "commitments",
    "nonces", "results", "resultDisclosedRounds", "resultNode", "aborted", "timeout", "balance",
]  # fmt: skip

OWNABLE_FUNCTIONS: dict[str, tuple[str, ...] | None] = {
    "owner()": ("address",),
    "transferOwnership(address)": (),
    "renounceOwnership()": (),
}

# signature -> output types (None: not checked). Views are checked to be view.
FUNCTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "CNX": {
        "name()": ("string",),
        "symbol()": ("string",),
        "decimals()": ("uint8",),
        "totalSupply()": ("uint256",),
        "balanceOf(address)": ("uint256",),
        "allowance(address,address)": ("uint256",),
        "transfer(address,uint256)": ("bool",),
        "approve(address,uint256)": ("bool",),
        "transferFrom(address,address,uint256)": ("bool",),
    },
    "Node": {
        "join()": (),
        "quit()": (),
        "pause()": (),
        "resume()": (),
        "startTask(address)": (),
        "finishTask(address)": (),
        "slash(address)": (),
        "updateTaskContractAddress(address)": (),
        "getNodeStatus(address)": ("uint256",),
        "totalNodes()": ("uint256",),
        "availableNodes()": ("uint256",),
        **OWNABLE_FUNCTIONS,
    },
    "Task": {
        "createTask(bytes32,bytes32)": (),
        "submitTaskResultCommitment(uint256,uint256,bytes32,bytes32)": (),
        "discloseTaskResult(uint256,uint256,bytes)": (),
        "reportTaskError(uint256,uint256)": (),
        "reportResultsUploaded(uint256,uint256)": (),
        "cancelTask(uint256)": (),
        "getTask(uint256)": (TASK_INFO,),
        "getNodeTask(address)": ("uint256",),
        "totalTasks()": ("uint256",),
        "totalSuccessTasks()": ("uint256",),
        "totalAbortedTasks()": ("uint256",),
        "getSelectedNode(bytes32,bytes32,uint256)": ("address",),
        "updateTaskFeePerNode(uint256)": (),
        "updateDistanceThreshold(uint256)": (),
        "updateTimeout(uint256)": (),
        **OWNABLE_FUNCTIONS,
    },
}

VIEWS = {
    "name", "symbol", "decimals", "totalSupply", "balanceOf", "allowance", "getNodeStatus", "totalNodes",
    "availableNodes", "getTask", "getNodeTask", "totalTasks", "totalSuccessTasks", "totalAbortedTasks",
    "getSelectedNode", "owner",
}  # fmt: skip

OWNERSHIP_TRANSFERRED = ("OwnershipTransferred(address,address)", (True, True), ("previousOwner", "newOwner"))

# signature -> (indexed flags, field names or None when PROTOCOL.md does not name them)
EVENTS: dict[str, dict[str, tuple[tuple[bool, ...], tuple[str, ...] | None]]] = {
    "CNX": {
        "Transfer(address,address,uint256)": ((True, True, False), None),
        "Approval(address,address,uint256)": ((True, True, False), None),
    },
    "Node": {OWNERSHIP_TRANSFERRED[0]: OWNERSHIP_TRANSFERRED[1:]},
    "Task": {
        "TaskCreated(uint256,address,address,bytes32,bytes32,uint256)": (
            (False, True, True, False, False, False),
            ("taskId", "creator", "selectedNode", "taskHash", "dataHash", "round"),
        ),
        "TaskResultCommitmentsReady(uint256)": ((False,), ("taskId",)),
        "TaskSuccess(uint256,bytes,address)": ((False, False, True), ("taskId", "result", "resultNode")),
        "TaskAborted(uint256,string)": ((False, False), ("taskId", "reason")),
        OWNERSHIP_TRANSFERRED[0]: OWNERSHIP_TRANSFERRED[1:],
    },
}


def _canonical(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}(" + ",".join(_canonical(i) for i in entry["inputs"]) + ")"


def _entries(contract: str, kind: str) -> dict[str, dict[str, Any]]:
    """The compiled ABI's entries of `kind` by canonical signature."""
    return {_signature(e): e for e in compile_contract(contract).abi if e.get("type") == kind}


def test_keccak_selectors_match_well_known_values() -> None:
    assert keccak(text="transfer(address,uint256)")[:4].hex() == "a9059cbb"
    assert keccak(text="approve(address,uint256)")[:4].hex() == "095ea7b3"
    assert keccak(text="transferFrom(address,address,uint256)")[:4].hex() == "23b872dd"
    assert keccak(text="Transfer(address,address,uint256)").hex() == "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@pytest.mark.parametrize("contract", list(FUNCTIONS))
def test_function_selectors_and_outputs(contract: str) -> None:
    compiled = _entries(contract, "function")
    by_selector = {keccak(text=sig)[:4]: entry for sig, entry in compiled.items()}
    for signature, outputs in FUNCTIONS[contract].items():
        selector = keccak(text=signature)[:4]
        assert selector in by_selector, f"{contract}: no function with selector {selector.hex()} = {signature}"
        entry = by_selector[selector]
        assert _signature(entry) == signature
        if outputs is not None:
            assert tuple(_canonical(o) for o in entry["outputs"]) == outputs, signature
        if entry["name"] in VIEWS:
            assert entry["stateMutability"] in ("view", "pure"), signature
        else:
            assert entry["stateMutability"] == "nonpayable", signature


def test_get_task_returns_one_tuple_with_the_hnet_field_names() -> None:
    (entry,) = [e for e in compile_contract("Task").abi if e.get("name") == "getTask"]
    (output,) = entry["outputs"]
    assert output["type"] == "tuple"
    assert [c["name"] for c in output["components"]] == TASK_INFO_NAMES
    assert "(" + ",".join(_canonical(c) for c in output["components"]) + ")" == TASK_INFO


@pytest.mark.parametrize("contract", list(EVENTS))
def test_event_topics_indexing_and_names(contract: str) -> None:
    compiled = _entries(contract, "event")
    for signature, (indexed, names) in EVENTS[contract].items():
        assert signature in compiled, f"{contract}: no event {signature}"
        entry = compiled[signature]
        assert keccak(text=_signature(entry)) == keccak(text=signature)
        assert entry.get("anonymous", False) is False
        assert tuple(bool(i["indexed"]) for i in entry["inputs"]) == indexed, signature
        if names is not None:
            assert tuple(i["name"] for i in entry["inputs"]) == names, signature


def test_event_codec_uses_the_hnet_topics() -> None:
    codec = EventCodec(compile_contract("Task").abi)
    assert codec.topics == {
        "TaskCreated": keccak(text="TaskCreated(uint256,address,address,bytes32,bytes32,uint256)"),
        "TaskResultCommitmentsReady": keccak(text="TaskResultCommitmentsReady(uint256)"),
        "TaskSuccess": keccak(text="TaskSuccess(uint256,bytes,address)"),
        "TaskAborted": keccak(text="TaskAborted(uint256,string)"),
    }


def test_event_codec_decodes_a_log_once_and_tells_apart_logs_that_differ() -> None:
    codec = EventCodec(compile_contract("Task").abi)
    log = {
        "topics": [codec.topics["TaskAborted"]],
        "data": encode(["uint256", "string"], [7, "Task fee cannot be paid"]),
        "blockNumber": 12,
        "logIndex": 0,
        "transactionHash": bytes(range(32)),
    }
    first = codec.decode(log)
    # the same log as hex text, as a JSON-RPC answer has it: the same event, not decoded again
    as_text = {**log, "topics": ["0x" + t.hex() for t in log["topics"]], "data": "0x" + log["data"].hex()}
    assert codec.decode(as_text) is first and codec._decoded.cache_info().misses == 1
    moved = codec.decode({**log, "logIndex": 1})
    other_reason = codec.decode({**log, "data": encode(["uint256", "string"], [7, "Task error reported"])})
    assert codec._decoded.cache_info().misses == 3
    assert (first.task_id, first.reason, first.log_index) == (7, "Task fee cannot be paid", 0)  # type: ignore[union-attr]
    assert moved.log_index == 1 and other_reason.reason == "Task error reported"  # type: ignore[union-attr]


def _raw_call(contracts: Deployment, to: str, signature: str, types: list[str], args: list[Any]) -> bytes:
    data = keccak(text=signature)[:4] + encode(types, args)
    return bytes(contracts.chain.w3.eth.call({"to": to, "data": "0x" + data.hex()}))


@pytest.mark.eth_tester
def test_deployed_code_answers_hand_encoded_calls(contracts: Deployment, task_run: RunningTask, app: LocalAccount) -> None:
    """What an H-net client encodes and decodes by its own ABI works on the deployment."""
    node, task = contracts.node.address, contracts.task.address
    assert decode(["uint256"], _raw_call(contracts, node, "totalNodes()", [], [])) == (3,)
    assert decode(["uint256"], _raw_call(contracts, node, "availableNodes()", [], [])) == (0,)
    busy = task_run.nodes[1].address
    assert decode(["uint256"], _raw_call(contracts, node, "getNodeStatus(address)", ["address"], [busy])) == (2,)
    assert decode(["uint256"], _raw_call(contracts, task, "getNodeTask(address)", ["address"], [busy])) == (1,)
    assert decode(["uint256"], _raw_call(contracts, task, "totalTasks()", [], [])) == (1,)
    (info,) = decode([TASK_INFO], _raw_call(contracts, task, "getTask(uint256)", ["uint256"], [1]))
    assert info[0] == 1 and info[1].lower() == app.address.lower()
    assert [a.lower() for a in info[5]] == [n.address.lower() for n in task_run.nodes]
    assert info[6] == (ZERO_HASH,) * 3 and info[8] == (b"",) * 3 and info[9] == ()
    assert info[13] == 30 * CNX
    balance = _raw_call(contracts, contracts.token.address, "balanceOf(address)", ["address"], [task])
    assert decode(["uint256"], balance) == (30 * CNX,)
