"""web3.py with its defaults against the in-memory sandbox, as an app written with it runs.

No explicit gas, fees or nonce: `build_transaction({"from": ...})` estimates the gas
(eth_estimateGas, no margin) and fills EIP-1559 fees; the nonce is web3's own choice
for a local signer, `get_transaction_count(from, "pending")` (web3's `fill_nonce`); the
transaction is signed with eth-account and sent raw. Each task then runs to its end
(Relay upload, TaskSuccess, images) with examples/app_workflow.py's Relay client, so the
nodes are free for the next createTask.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from hydrogen_harness.sandbox.core import Sandbox
from tests.clients.conftest import client_tasks

ROOT = Path(__file__).resolve().parents[2]
OUTCOME_WAIT = 60.0  # seconds one task may take from createTask to TaskSuccess on a loaded machine


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """examples/app_workflow.py (its Relay signing and client), imported from its file."""
    spec = importlib.util.spec_from_file_location("app_workflow_for_clients", ROOT / "examples" / "app_workflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def send_with_defaults(w3: Web3, account: Any, call: Any) -> dict[str, Any]:
    """build_transaction with web3's defaults, sign, send raw, wait for the receipt."""
    tx = call.build_transaction({"from": account.address})
    assert "gas" in tx and "maxFeePerGas" in tx and "nonce" not in tx  # web3 estimated and priced it
    tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.1))
    receipt["gasLimit"] = tx["gas"]
    return receipt


def test_approve_and_create_task_with_web3_defaults(in_memory_sandbox: Sandbox, example: ModuleType, tmp_path: Path) -> None:
    info = in_memory_sandbox.info
    app = example.App(info, log=False)  # the example's Relay client and event reading
    w3 = Web3(Web3.HTTPProvider(info["rpc_url"], request_kwargs={"timeout": 30}))
    account = Account.from_key(info["app"]["private_key"])
    token = w3.eth.contract(address=info["contracts"]["token"], abi=info["abi"]["token"])
    task = w3.eth.contract(address=info["contracts"]["task"], abi=info["abi"]["task"])
    created_topic = w3.keccak(text="TaskCreated(uint256,address,address,bytes32,bytes32,uint256)")
    fee = task.functions.taskFeePerNode().call()
    tasks = client_tasks(default=6)
    failed: list[str] = []
    for i in range(tasks):
        args_json = json.dumps({
            "base_model": "runwayml/stable-diffusion-v1-5", "prompt": f"a web3.py task {i}",
            "task_config": {"image_width": 64, "image_height": 64, "num_images": 1, "seed": i, "steps": 1},
        }, separators=(",", ":"))  # fmt: skip
        approve = send_with_defaults(w3, account, token.functions.approve(task.address, 3 * fee))
        create = send_with_defaults(w3, account, task.functions.createTask(Web3.keccak(text=args_json), b"\0" * 32))
        for name, receipt in (("approve", approve), ("createTask", create)):
            if receipt["status"] != 1:
                out_of_gas = receipt["gasUsed"] == receipt["gasLimit"]
                failed.append(f"task {i}: {name} {'ran out of gas' if out_of_gas else 'reverted'} "
                              f"(gas used {receipt['gasUsed']} of {receipt['gasLimit']}, block {receipt['blockNumber']})")  # fmt: skip
        if create["status"] != 1:
            continue
        log = next(entry for entry in create["logs"] if entry["topics"][0] == created_topic)
        task_id = task.events.TaskCreated().process_log(log)["args"]["taskId"]
        app.upload_args(task_id, args_json, timeout=OUTCOME_WAIT)
        deadline = time.monotonic() + OUTCOME_WAIT
        outcome = app.outcome(task_id, create["blockNumber"])
        while outcome is None and time.monotonic() < deadline:
            time.sleep(0.1)  # polling interval of a bounded wait, as the example polls
            outcome = app.outcome(task_id, create["blockNumber"])
        assert outcome is not None and outcome["event"] == "TaskSuccess", f"task {task_id}: {outcome}"
        assert app.download(task_id, 0, timeout=OUTCOME_WAIT)[:8] == b"\x89PNG\r\n\x1a\n"
    assert failed == [], "\n".join(failed)
