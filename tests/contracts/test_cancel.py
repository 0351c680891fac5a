"""cancelTask and the deliberate deviations of PROTOCOL.md 2.5 (f = 10 CNX)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import CNX, NodeStatus
from tests.contracts.helpers import (
    EMPTY_TASK,
    FEE,
    HONEST,
    STAKE,
    Balances,
    JoinNodes,
    RunningTask,
    assert_invariants,
    event_tuples,
    flip_bits,
    start_task,
)

AVAILABLE, BUSY, QUIT, PAUSED = NodeStatus.AVAILABLE, NodeStatus.BUSY, NodeStatus.QUIT, NodeStatus.PAUSED
CANCELLED = "Task Cancelled"


@pytest.mark.eth_tester
def test_cancel_before_or_at_the_deadline_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    timeout = task_run.info().timeout
    with expect_revert("Task has not exceeded the deadline yet"):
        contracts.task.cancel(task_run.app, task_run.id)
    contracts.chain.set_next_timestamp(timeout)  # block.timestamp == timeout still reverts
    with expect_revert("Task has not exceeded the deadline yet") as caught:
        contracts.task.cancel(task_run.app, task_run.id)
    assert contracts.chain.w3.eth.get_block(caught[0].receipt["blockNumber"])["timestamp"] == timeout
    assert task_run.info().balance == 3 * FEE
    contracts.chain.set_next_timestamp(timeout + 1)
    receipt = contracts.task.cancel(task_run.app, task_run.id)
    assert contracts.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == timeout + 1
    assert task_run.info() == EMPTY_TASK


def test_cancel_by_a_stranger_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    stranger = contracts.new_account()
    with expect_revert("Unauthorized to cancel task"):  # checked before the deadline
        contracts.task.cancel(stranger, task_run.id)
    task_run.pass_deadline()
    for sender in (stranger, contracts.owner):
        with expect_revert("Unauthorized to cancel task"):
            contracts.task.cancel(sender, task_run.id)
    assert task_run.info().balance == 3 * FEE


def test_cancel_of_a_missing_task_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    task_run.pass_deadline()
    for task_id in (0, 2):
        with expect_revert("Task not exist"):
            contracts.task.cancel(task_run.app, task_id)


@pytest.mark.parametrize("round_", [0, 1, 2])
def test_cancel_by_a_selected_node_refunds_the_creator(contracts: Deployment, task_run: RunningTask, round_: int) -> None:
    watch = task_run.balances()
    receipt = task_run.cancel(by=task_run.nodes[round_])
    assert event_tuples(contracts, receipt) == [("TaskAborted", task_run.id, CANCELLED)]
    watch.assert_changes(app=+3 * FEE, task=-3 * FEE)
    assert task_run.statuses() == (AVAILABLE,) * 3


@pytest.mark.parametrize("progress", ["nothing done", "all committed", "one disclosed"])
def test_cancel_before_any_payment_refunds_everything(
    contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount], progress: str
) -> None:
    run = task_run
    watch = run.balances()
    if progress != "nothing done":
        for r in range(3):
            run.commit(r, HONEST)
    if progress == "one disclosed":
        run.disclose(1, HONEST)
    assert event_tuples(contracts, run.cancel()) == [("TaskAborted", run.id, CANCELLED)]
    watch.assert_changes(app=+3 * FEE, task=-3 * FEE)
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert contracts.task.task_fee(run.id) == 0
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (0, 0)  # cancels do not count
    assert contracts.node.available_nodes() == 3
    assert_invariants(contracts, nodes, [run.id])


def test_cancel_after_two_agreeing_disclosures(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount]) -> None:
    run = task_run
    watch = run.balances()
    for r in range(3):
        run.commit(r, HONEST)
    run.disclose(2, HONEST)
    run.disclose(0, HONEST)  # d1 = round 0 paid 10 CNX; success with round 2, which never reports
    run.cancel()
    watch.assert_changes(app=+2 * FEE, r0=FEE, task=-3 * FEE)
    assert 2 * FEE == 20 * CNX
    timeline = [e for e in contracts.task.events_between(run.created.receipt["blockNumber"], contracts.chain.block_number)]
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in timeline] == [
        ("TaskCreated", None),
        ("TaskCreated", None),
        ("TaskCreated", None),
        ("TaskResultCommitmentsReady", None),
        ("TaskSuccess", None),
        ("TaskAborted", CANCELLED),
    ]
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (1, 0)
    assert_invariants(contracts, nodes, [run.id])


def test_cancel_when_only_the_upload_report_is_missing(contracts: Deployment, task_run: RunningTask) -> None:
    run = task_run
    watch = run.balances()
    for r in range(3):
        run.commit(r, HONEST)
    for r in range(3):
        run.disclose(r, HONEST)
    assert event_tuples(contracts, run.cancel()) == [("TaskAborted", run.id, CANCELLED)]
    watch.assert_changes(app=+FEE, r1=FEE, r2=FEE, task=-3 * FEE)
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.info() == EMPTY_TASK


def test_cancel_after_two_error_reports(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount]) -> None:
    run = task_run
    watch = run.balances()
    run.report_error(0)
    run.report_error(1)  # TaskAborted("Task error reported"); rounds 0 and 1 paid
    assert event_tuples(contracts, run.cancel()) == []  # no second TaskAborted
    watch.assert_changes(app=+FEE, r0=FEE, r1=FEE, task=-3 * FEE)
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert contracts.task.total_aborted_tasks() == 1
    assert_invariants(contracts, nodes, [run.id])


def test_cancel_resolves_pending_pause_and_pending_quit(contracts: Deployment, task_run: RunningTask) -> None:
    run = task_run
    contracts.node.pause(run.nodes[0])
    contracts.node.quit(run.nodes[1])
    watch = run.balances()
    run.cancel()
    assert run.statuses() == (PAUSED, QUIT, AVAILABLE)
    watch.assert_changes(app=+3 * FEE, task=-3 * FEE, r1=+STAKE, node=-STAKE)
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (2, 1)


# ------------------------------------------------------------------ deviation 2: only nodes still bound to this task


def _rebind(contracts: Deployment, run: RunningTask, how: str) -> LocalAccount:
    """Settle one node of `run` in the way `how`, leaving `run` alive; returns that
    node, now AVAILABLE (joined again if it had left)."""
    for r in range(3):
        run.commit(r, HONEST if r < 2 else flip_bits(HONEST, 5))
    if how == "quit and rejoined":
        contracts.node.quit(run.nodes[1])  # PENDING_QUIT
    run.disclose(0, HONEST)
    run.disclose(1, HONEST)  # d1 = round 1: paid and freed; success with round 0 (never reports)
    node = run.nodes[1]
    if how == "slashed and rejoined":
        run.disclose(2, flip_bits(HONEST, 5))  # round 2 slashed
        node = run.nodes[2]
        contracts.fund(node.address, cnx=STAKE)
    if how != "paid":
        assert contracts.node.status(node.address) == QUIT
        contracts.token.approve(node, contracts.node.address, STAKE)
        contracts.node.join(node)
    assert contracts.node.status(node.address) == AVAILABLE
    assert contracts.task.node_task(node.address) == 0
    return node


@pytest.mark.parametrize("how", ["paid", "quit and rejoined", "slashed and rejoined"])
def test_late_cancel_does_not_free_a_node_from_its_new_task(
    contracts: Deployment, task_run: RunningTask, join_nodes: JoinNodes, nodes: dict[str, LocalAccount], how: str
) -> None:
    old = task_run
    moved = _rebind(contracts, old, how)
    nodes.update(join_nodes(3 - contracts.node.available_nodes()))  # exactly 3 available: the new task takes all
    app2 = contracts.new_app(approve=1000 * CNX)
    new = start_task(contracts, app2, nodes)
    assert moved in new.nodes
    new_info = new.info()
    watch = Balances(contracts, app=old.app.address, app2=app2.address, moved=moved.address, task=contracts.task.address)
    remaining = old.info().balance
    assert remaining == (FEE if how == "slashed and rejoined" else 2 * FEE)
    assert event_tuples(contracts, old.cancel()) == [("TaskAborted", old.id, CANCELLED)]
    watch.assert_changes(app=+remaining, task=-remaining)
    assert contracts.node.status(moved.address) == BUSY
    assert contracts.task.node_task(moved.address) == new.id
    assert new.info() == new_info
    assert old.info() == EMPTY_TASK
    assert contracts.node.status(old.nodes[0].address) == AVAILABLE  # the unreported result node is freed
    # The new task still runs to the end with the moved node.
    for r in range(3):
        new.commit(r, HONEST)
    for r in range(3):
        new.disclose(r, HONEST)
    new.report_uploaded(0)
    assert new.statuses() == (AVAILABLE,) * 3
    assert_invariants(contracts, nodes, [old.id, new.id])


def test_settled_task_is_deleted_while_a_node_is_on_a_new_task(
    contracts: Deployment, task_run: RunningTask, join_nodes: JoinNodes, nodes: dict[str, LocalAccount]
) -> None:
    old = task_run
    moved = _rebind(contracts, old, "paid")
    nodes.update(join_nodes(3 - contracts.node.available_nodes()))  # the new task takes all 3
    new = start_task(contracts, contracts.new_app(approve=1000 * CNX), nodes)
    assert moved in new.nodes
    watch = old.balances()
    old.disclose(2, flip_bits(HONEST, 5))  # round 2 committed a cheat: slashed
    old.report_uploaded(0)
    watch.assert_changes(app=+FEE, r0=FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE)
    assert old.info() == EMPTY_TASK  # not lingering because round 1 has a task again
    assert contracts.task.node_task(moved.address) == new.id
    old.pass_deadline()
    with expect_revert("Task not exist"):
        contracts.task.cancel(old.app, old.id)
    assert_invariants(contracts, nodes, [old.id, new.id])


# ------------------------------------------------------------------ deviation 3: the creation fee


@pytest.mark.parametrize("new_fee", [1 * CNX, 25 * CNX])
def test_fee_change_mid_task_pays_the_creation_fee(
    contracts: Deployment, task_run: RunningTask, join_nodes: JoinNodes, nodes: dict[str, LocalAccount], new_fee: int
) -> None:
    run = task_run
    watch = run.balances()
    contracts.task.update_fee_per_node(contracts.owner, new_fee)
    assert contracts.task.task_fee(run.id) == FEE
    for r in range(3):
        run.commit(r, HONEST)
    run.disclose(0, HONEST)
    run.disclose(1, HONEST)
    run.disclose(2, HONEST)
    assert run.info().balance == FEE
    run.report_uploaded(0)
    watch.assert_changes(r0=FEE, r1=FEE, r2=FEE, task=-3 * FEE)
    assert contracts.token.balance_of(contracts.task.address) == 0  # escrow exactly zero
    assert run.info() == EMPTY_TASK
    # A new task is escrowed with the new fee.
    more = join_nodes(3)
    watch2 = Balances(contracts, app=run.app.address, task=contracts.task.address)
    second = start_task(contracts, run.app, more | nodes)
    watch2.assert_changes(app=-3 * new_fee, task=+3 * new_fee)
    assert contracts.task.task_fee(second.id) == new_fee


@pytest.mark.parametrize("new_fee", [1 * CNX, 25 * CNX])
def test_fee_change_mid_task_refunds_the_creation_fee(contracts: Deployment, task_run: RunningTask, new_fee: int) -> None:
    run = task_run
    watch = run.balances()
    for r in range(3):
        run.commit(r, HONEST if r < 2 else flip_bits(HONEST, 5))
    run.disclose(0, HONEST)
    contracts.task.update_fee_per_node(contracts.owner, new_fee)
    run.disclose(1, HONEST)  # d1 paid
    run.disclose(2, flip_bits(HONEST, 5))  # slashed: its fee back to the app
    watch.assert_changes(app=+FEE, r1=FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE)
    run.cancel()  # the result node never reports: its fee back to the app
    watch.assert_changes(app=+2 * FEE, r1=FEE, task=-3 * FEE, node=-STAKE, owner=+STAKE)
    assert contracts.token.balance_of(contracts.task.address) == 0


# ------------------------------------------------------------------ deviation 4: one upload report


def test_second_upload_report_reverts_and_pays_nothing(contracts: Deployment, task_run: RunningTask, join_nodes: JoinNodes, nodes: dict[str, LocalAccount]) -> None:
    run = task_run
    for r in range(3):
        run.commit(r, HONEST)
    run.disclose(0, HONEST)
    run.disclose(1, HONEST)
    watch = Balances(contracts, r0=run.nodes[0].address, r2=run.nodes[2].address)
    run.report_uploaded(0)
    # Round 0 is freed and taken by a new task; round 2 has not disclosed, so the task lives.
    nodes.update(join_nodes(3 - contracts.node.available_nodes()))  # the new task takes all 3
    new = start_task(contracts, contracts.new_app(approve=1000 * CNX), nodes)
    assert run.nodes[0] in new.nodes
    with expect_revert("Results already reported"):
        run.report_uploaded(0)
    watch.assert_changes(r0=FEE)
    assert run.info().balance == FEE
    assert contracts.task.node_task(run.nodes[0].address) == new.id
    assert contracts.node.status(run.nodes[0].address) == BUSY
    run.disclose(2, HONEST)
    assert run.info() == EMPTY_TASK
    watch.assert_changes(r0=FEE, r2=FEE)
    assert contracts.token.balance_of(contracts.task.address) == 3 * FEE  # the new task's escrow only
