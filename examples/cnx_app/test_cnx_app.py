"""cnx_app against the live sandbox: every ending a task can have on H-net.

Run with `pytest examples/cnx_app` (add `--hydrogen-rpc-url http://127.0.0.1:8545`
to run the same tests on anvil or another node).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from cnx_app import CnxApp, TaskFailed, args_json

CNX = 10**18
ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 2, "image_width": 64, "image_height": 64}}  # fmt: skip
QUIT = 0  # Node.getNodeStatus: a slashed node has left the network


@pytest.fixture
def app(hydrogen_sandbox: Any) -> Iterator[CnxApp]:
    """The application under test, configured as for the real network, with 100 CNX."""
    wallet = hydrogen_sandbox.new_wallet(cnx=100 * CNX)
    addresses = hydrogen_sandbox.addresses
    with CnxApp(hydrogen_sandbox.rpc_url, hydrogen_sandbox.relay_url, addresses["token"], addresses["task"], wallet.key) as app:
        yield app


def set_task_timeout(sandbox: Any, seconds: int) -> None:
    """As the contracts' owner, make new tasks time out after `seconds` (15 minutes on H-net)."""
    w3 = Web3(Web3.HTTPProvider(sandbox.rpc_url))
    task = w3.eth.contract(address=sandbox.addresses["task"], abi=sandbox.abi("task"))
    owner = sandbox.owner
    nonce = w3.eth.get_transaction_count(owner.address, "pending")
    tx = task.functions.updateTimeout(seconds).build_transaction({"from": owner.address, "nonce": nonce, "gas": 200_000})
    tx_hash = w3.eth.send_raw_transaction(owner.account.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1


def test_happy_path(app: CnxApp) -> None:
    report = app.run(ARGS)
    assert report.outcome == "success" and len(report.images) == 2
    assert report.spent == 30 * CNX  # 3 nodes x 10 CNX


@pytest.mark.hydrogen_nodes("honest", "cheater", "honest")
def test_a_cheater_is_slashed(app: CnxApp, hydrogen_sandbox: Any) -> None:
    report = app.run(ARGS)
    assert report.outcome == "success" and len(report.images) == 2
    assert report.spent == 20 * CNX  # the cheater's fee comes back
    assert hydrogen_sandbox.nodes[1].status() == QUIT


@pytest.mark.hydrogen_nodes("error", "error", "honest")
def test_two_error_reports_abort_the_task(app: CnxApp, hydrogen_sandbox: Any) -> None:
    report = app.run(ARGS)
    assert report.outcome == "aborted" and report.reason == "Task error reported"
    # Both reporters are paid. The honest node is slashed if it had committed (its fee
    # comes back), else it reports an error too and is paid (PROTOCOL.md 3).
    slashed = hydrogen_sandbox.nodes[2].status() == QUIT
    assert report.spent == (20 if slashed else 30) * CNX


def test_relay_503s_on_upload(app: CnxApp, hydrogen_sandbox: Any) -> None:
    fault = hydrogen_sandbox.faults.fail_next(2, "POST", "/v1/inference_tasks", status=503)
    assert app.run(ARGS).outcome == "success"
    assert fault.calls == 2


def test_dropped_connections_on_download(app: CnxApp, hydrogen_sandbox: Any) -> None:
    fault = hydrogen_sandbox.faults.fail_next(3, "GET", re.compile(r"/results/\d+$"), drop=True)
    report = app.run(ARGS)
    assert len(report.images) == 2 and fault.calls == 3


@pytest.mark.hydrogen_nodes("offline", "offline", "offline")
def test_a_timeout_is_cancelled_for_a_refund(app: CnxApp, hydrogen_sandbox: Any) -> None:
    set_task_timeout(hydrogen_sandbox, 2)  # the owner shortens H-net's 15 minutes
    report = app.run(ARGS)
    assert report.outcome == "cancelled" and report.spent == 0  # 30 CNX paid, 30 back


@pytest.mark.hydrogen_nodes("offline", "offline", "offline")
def test_a_deadline_reached_by_moving_time(app: CnxApp, hydrogen_sandbox: Any) -> None:
    task_id, block = app.create_task(args_json(ARGS))
    hydrogen_sandbox.advance(15 * 60 + 1)
    assert app.wait(task_id, block)["reason"] == "Task Cancelled"


@pytest.mark.hydrogen_nodes(0)
def test_no_nodes_no_task(app: CnxApp) -> None:
    with pytest.raises(TaskFailed, match="Not enough nodes"):
        app.run(ARGS)
