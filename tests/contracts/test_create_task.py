"""createTask (PROTOCOL.md 2.3): escrow, receipt logs, selection bookkeeping, reverts.

"Task fee payment failed" is not tested: the CNX token reverts (or returns True)
rather than returning False, and the balance and allowance are checked first, so
that branch cannot be reached with the project's token.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import CNX, ZERO_HASH, NodeStatus
from tests.contracts.helpers import EMPTY_TASK, FEE, JoinNodes, Balances, assert_invariants, fresh_hash, start_task

APPROVAL = keccak(text="Approval(address,address,uint256)")
TRANSFER = keccak(text="Transfer(address,address,uint256)")
TASK_CREATED = keccak(text="TaskCreated(uint256,address,address,bytes32,bytes32,uint256)")
MAX_UINT = 2**256 - 1


def _topic(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _raw(log: Any) -> tuple[str, tuple[bytes, ...], bytes]:
    return to_checksum_address(log["address"]), tuple(bytes(t) for t in log["topics"]), bytes(log["data"])


def test_escrows_three_fees(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    watch = Balances(contracts, app=app.address, task=contracts.task.address, node=contracts.node.address)
    run = start_task(contracts, app, nodes)
    watch.assert_changes(app=-3 * FEE, task=+3 * FEE)
    assert 3 * FEE == 30 * CNX
    assert run.info().balance == 30 * CNX
    assert contracts.task.task_fee(run.id) == FEE
    assert contracts.token.allowance(app.address, contracts.task.address) == 1000 * CNX - 30 * CNX
    assert_invariants(contracts, nodes, [run.id])


def test_receipt_has_exactly_approval_transfer_and_three_task_created(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    task_hash, data_hash = fresh_hash(), fresh_hash()
    run = start_task(contracts, app, nodes, task_hash=task_hash)
    # start_task passes a zero dataHash; a second task below has a non-zero one.
    logs = [_raw(log) for log in run.created.receipt["logs"]]
    token, task = contracts.token.address, contracts.task.address
    assert logs == [
        (token, (APPROVAL, _topic(app.address), _topic(task)), (970 * CNX).to_bytes(32, "big")),
        (token, (TRANSFER, _topic(app.address), _topic(task)), (30 * CNX).to_bytes(32, "big")),
        *[
            (task, (TASK_CREATED, _topic(app.address), _topic(run.nodes[r].address)), (1).to_bytes(32, "big") + task_hash + ZERO_HASH + r.to_bytes(32, "big"))
            for r in range(3)
        ],
    ]
    # With a data hash: the same shape, the dataHash in each TaskCreated.
    for account in contracts.new_node(), contracts.new_node(), contracts.new_node():
        nodes[account.address] = account
    second = contracts.task.create_task(app, task_hash, data_hash)
    created = [decode(["uint256", "bytes32", "bytes32", "uint256"], _raw(log)[2]) for log in second.receipt["logs"][2:]]
    assert created == [(2, task_hash, data_hash, r) for r in range(3)]
    assert contracts.task.get_task(2).data_hash == data_hash


def test_infinite_allowance_gives_four_logs_and_is_not_spent(contracts: Deployment, nodes: dict[str, LocalAccount]) -> None:
    app = contracts.new_app(cnx=100 * CNX, approve=MAX_UINT)
    run = start_task(contracts, app, nodes)
    logs = [_raw(log) for log in run.created.receipt["logs"]]
    assert [(address, topics[0]) for address, topics, _ in logs] == [
        (contracts.token.address, TRANSFER),
        *[(contracts.task.address, TASK_CREATED)] * 3,
    ]
    assert contracts.token.allowance(app.address, contracts.task.address) == MAX_UINT
    assert contracts.token.balance_of(app.address) == 70 * CNX


def test_selects_three_distinct_available_nodes_and_makes_them_busy(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount) -> None:
    nodes = join_nodes(5)
    paused = list(nodes.values())[0]
    contracts.node.pause(paused)
    run = start_task(contracts, app, nodes)
    chosen = [n.address for n in run.nodes]
    assert len(set(chosen)) == 3
    assert paused.address not in chosen
    assert run.statuses() == (NodeStatus.BUSY,) * 3
    assert run.node_tasks() == (run.id,) * 3
    others = [a for a in nodes if a not in chosen]
    assert sorted(contracts.node.status(a) for a in others) == [NodeStatus.AVAILABLE, NodeStatus.PAUSED]
    assert [contracts.task.node_task(a) for a in others] == [0] * len(others)
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (5, 1)
    assert_invariants(contracts, nodes, [run.id])


@pytest.mark.eth_tester
def test_get_task_fields(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    task_hash = fresh_hash()
    run = start_task(contracts, app, nodes, task_hash=task_hash)
    block = contracts.chain.w3.eth.get_block(run.created.receipt["blockNumber"])
    info = run.info()
    assert info == type(info)(
        id=1,
        creator=app.address,
        task_hash=task_hash,
        data_hash=ZERO_HASH,
        is_success=False,
        selected_nodes=tuple(n.address for n in run.nodes),
        commitments=(ZERO_HASH,) * 3,
        nonces=(ZERO_HASH,) * 3,
        results=(b"",) * 3,
        result_disclosed_rounds=(),
        result_node=EMPTY_TASK.result_node,
        aborted=False,
        timeout=int(block["timestamp"]) + 900,
        balance=30 * CNX,
    )


def test_task_ids_start_at_one_and_count_up(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount) -> None:
    nodes = join_nodes(6)
    assert contracts.task.total_tasks() == 0
    assert contracts.task.get_task(0) == EMPTY_TASK
    first = start_task(contracts, app, nodes)
    second = start_task(contracts, app, nodes)
    assert (first.id, second.id) == (1, 2)
    assert contracts.task.total_tasks() == 2
    first.cancel()  # frees its 3 nodes; a deleted task's id is not reused
    assert start_task(contracts, app, nodes).id == 3
    assert contracts.task.total_tasks() == 3
    assert contracts.task.get_task(1) == EMPTY_TASK


def test_not_enough_tokens(contracts: Deployment, nodes: dict[str, LocalAccount]) -> None:
    app = contracts.new_app(cnx=30 * CNX - 1, approve=1000 * CNX)
    with expect_revert("Not enough tokens for task") as caught:
        contracts.task.create_task(app, fresh_hash())
    assert caught[0].receipt is not None and list(caught[0].receipt["logs"]) == []
    assert contracts.token.balance_of(app.address) == 30 * CNX - 1
    assert contracts.task.total_tasks() == 0
    assert contracts.node.available_nodes() == 3


def test_not_enough_allowance(contracts: Deployment, nodes: dict[str, LocalAccount]) -> None:
    app = contracts.new_app(cnx=1000 * CNX, approve=30 * CNX - 1)
    with expect_revert("Not enough allowance for task"):
        contracts.task.create_task(app, fresh_hash())
    assert contracts.token.balance_of(app.address) == 1000 * CNX
    assert contracts.node.available_nodes() == 3


def test_exact_balance_and_allowance_suffice(contracts: Deployment, nodes: dict[str, LocalAccount]) -> None:
    app = contracts.new_app(cnx=30 * CNX, approve=30 * CNX)
    start_task(contracts, app, nodes)
    assert contracts.token.balance_of(app.address) == 0
    assert contracts.token.allowance(app.address, contracts.task.address) == 0


@pytest.mark.parametrize("setup", ["two joined", "three joined, one paused", "four joined, three busy"])
def test_not_enough_nodes(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount, setup: str) -> None:
    if setup == "two joined":
        join_nodes(2)
    elif setup == "three joined, one paused":
        contracts.node.pause(next(iter(join_nodes(3).values())))
    else:
        start_task(contracts, app, join_nodes(4))
    watch = Balances(contracts, app=app.address, task=contracts.task.address)
    tasks = contracts.task.total_tasks()
    with expect_revert("Not enough nodes"):
        contracts.task.create_task(app, fresh_hash())
    watch.assert_changes()
    assert contracts.task.total_tasks() == tasks


def test_reverts_are_checked_in_the_documented_order(contracts: Deployment) -> None:
    # No nodes at all, so every check below fails, and only the first one counts.
    poor = contracts.new_app(cnx=0)
    with expect_revert("Not enough tokens for task"):
        contracts.task.create_task(poor, fresh_hash())
    unapproved = contracts.new_app(cnx=1000 * CNX)
    with expect_revert("Not enough allowance for task"):
        contracts.task.create_task(unapproved, fresh_hash())
    approved = contracts.new_app(cnx=1000 * CNX, approve=30 * CNX)
    with expect_revert("Not enough nodes"):
        contracts.task.create_task(approved, fresh_hash())


@pytest.mark.eth_tester
def test_owner_parameters(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount) -> None:
    task = contracts.task
    assert (task.fee_per_node(), task.distance_threshold(), task.timeout()) == (10 * CNX, 5, 900)
    stranger = contracts.new_account()
    for update in (task.update_fee_per_node, task.update_distance_threshold, task.update_timeout):
        with expect_revert("Ownable: caller is not the owner"):
            update(stranger, 1)
    assert (task.fee_per_node(), task.distance_threshold(), task.timeout()) == (10 * CNX, 5, 900)
    task.update_fee_per_node(contracts.owner, 7 * CNX)
    task.update_timeout(contracts.owner, 60)
    task.update_distance_threshold(contracts.owner, 9)
    assert (task.fee_per_node(), task.distance_threshold(), task.timeout()) == (7 * CNX, 9, 60)
    watch = Balances(contracts, app=app.address, task=task.address)
    run = start_task(contracts, app, join_nodes(3))
    watch.assert_changes(app=-21 * CNX, task=+21 * CNX)
    block = contracts.chain.w3.eth.get_block(run.created.receipt["blockNumber"])
    assert run.info().timeout == int(block["timestamp"]) + 60
    assert task.task_fee(run.id) == 7 * CNX
