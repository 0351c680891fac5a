"""Commitments, disclosures and the honest path (PROTOCOL.md 2.3 and 3).

Two revert strings of the table cannot be reached, so they are not tested:
- discloseTaskResult "Task is aborted": a task is aborted either by a third
  disclosure ("Task result illegal", which settles every round and deletes the
  task) or by two error reports; then either the third node has a real commitment,
  is slashed and the task is deleted, or it has none and "Commitments not ready"
  fires first.
- reportResultsUploaded "Task is aborted": an aborted task never has a result
  node (two error reports and "Task result illegal" set none), so "Not result
  round" fires first.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import ZERO_HASH, NodeStatus, commitment_of
from tests.contracts.helpers import (
    EMPTY_TASK,
    FEE,
    HONEST,
    RunningTask,
    assert_invariants,
    event_tuples,
    fresh_hash,
    start_task,
)

AVAILABLE, BUSY = NodeStatus.AVAILABLE, NodeStatus.BUSY


def _commit_all(run: RunningTask, result: bytes = HONEST) -> None:
    for r in range(3):
        run.commit(r, result)


# ------------------------------------------------------------------ submitTaskResultCommitment


def test_commit_to_a_missing_task_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    node, nonce = task_run.nodes[0], fresh_hash()
    for task_id in (0, 2):
        with expect_revert("Task not exist"):
            contracts.task.submit_commitment(node, task_id, 0, commitment_of(HONEST, nonce), nonce)
    with expect_revert("Task not exist"):  # checked before the round
        contracts.task.submit_commitment(node, 2, 7, commitment_of(HONEST, nonce), nonce)


def test_commit_to_a_missing_round_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    nonce = fresh_hash()
    with expect_revert("Round not exist"):
        contracts.task.submit_commitment(task_run.nodes[0], task_run.id, 3, commitment_of(HONEST, nonce), nonce)
    with expect_revert("Round not exist"):  # checked before the sender
        contracts.task.submit_commitment(contracts.new_account(), task_run.id, 3, commitment_of(HONEST, nonce), nonce)


def test_commit_by_a_node_not_selected_for_the_round_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    nonce = fresh_hash()
    for sender in (contracts.new_account(), task_run.nodes[1], contracts.owner):
        with expect_revert("Not selected node"):
            contracts.task.submit_commitment(sender, task_run.id, 0, commitment_of(HONEST, nonce), nonce)
    assert task_run.info().commitments == (ZERO_HASH,) * 3


def test_commit_twice_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    task_run.commit(0, HONEST)
    stored = task_run.info()
    with expect_revert("Already submitted"):
        task_run.commit(0, HONEST)
    with expect_revert("Already submitted"):  # checked before the nonce
        contracts.task.submit_commitment(task_run.nodes[0], task_run.id, 0, commitment_of(HONEST, ZERO_HASH), ZERO_HASH)
    task_run.report_error(1)
    with expect_revert("Already submitted"):
        task_run.commit(1, HONEST)
    assert task_run.info().commitments[0] == stored.commitments[0]


def test_commit_to_an_aborted_task_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    task_run.report_error(0)
    task_run.report_error(1)
    assert task_run.info().aborted
    with expect_revert("Task is aborted"):
        task_run.commit(2, HONEST)
    with expect_revert("Task is aborted"):  # checked before the nonce
        contracts.task.submit_commitment(task_run.nodes[2], task_run.id, 2, commitment_of(HONEST, ZERO_HASH), ZERO_HASH)


def test_zero_nonce_is_always_used(contracts: Deployment, task_run: RunningTask) -> None:
    with expect_revert("Nonce already used"):
        contracts.task.submit_commitment(task_run.nodes[0], task_run.id, 0, commitment_of(HONEST, ZERO_HASH), ZERO_HASH)
    assert task_run.info().commitments == (ZERO_HASH,) * 3


def test_nonce_of_another_round_is_used_but_not_one_of_another_task(
    contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount]
) -> None:
    nonce = fresh_hash()
    contracts.task.submit_commitment(task_run.nodes[0], task_run.id, 0, commitment_of(HONEST, nonce), nonce)
    with expect_revert("Nonce already used"):
        contracts.task.submit_commitment(task_run.nodes[2], task_run.id, 2, commitment_of(b"\x07" * 8, nonce), nonce)
    assert task_run.info().nonces == (nonce, ZERO_HASH, ZERO_HASH)
    more = {a.address: a for a in (contracts.new_node() for _ in range(3))}
    other = start_task(contracts, task_run.app, more)
    contracts.task.submit_commitment(other.nodes[1], other.id, 1, commitment_of(HONEST, nonce), nonce)
    assert other.info().nonces == (ZERO_HASH, nonce, ZERO_HASH)


# ------------------------------------------------------------------ discloseTaskResult


def test_disclose_empty_result_reverts_first(contracts: Deployment, task_run: RunningTask) -> None:
    _commit_all(task_run)
    with expect_revert("Invalid result"):
        task_run.disclose(0, b"")
    with expect_revert("Invalid result"):  # before every other check
        contracts.task.disclose(contracts.new_account(), 99, 9, b"")


def test_disclose_to_a_missing_task_round_or_by_a_wrong_node_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    _commit_all(task_run)
    node = task_run.nodes[0]
    with expect_revert("Task not exist"):
        contracts.task.disclose(node, 2, 0, HONEST)
    with expect_revert("Task not exist"):
        contracts.task.disclose(node, 0, 0, HONEST)
    with expect_revert("Round not exist"):
        contracts.task.disclose(node, task_run.id, 3, HONEST)
    with expect_revert("Not selected node"):
        contracts.task.disclose(node, task_run.id, 1, HONEST)
    with expect_revert("Not selected node"):
        contracts.task.disclose(contracts.new_account(), task_run.id, 0, HONEST)
    assert task_run.info().results == (b"",) * 3


def test_disclose_twice_reverts(task_run: RunningTask) -> None:
    _commit_all(task_run)
    task_run.disclose(0, HONEST)
    with expect_revert("Already submitted"):
        task_run.disclose(0, HONEST)
    task_run.disclose(1, HONEST)  # d1: paid and freed, the task lives on
    with expect_revert("Already submitted"):
        task_run.disclose(1, HONEST)
    assert task_run.info().result_disclosed_rounds == (0, 1)


def test_disclose_before_all_commitments_reverts(task_run: RunningTask) -> None:
    task_run.commit(0, HONEST)
    task_run.commit(1, HONEST)
    with expect_revert("Commitments not ready"):
        task_run.disclose(0, HONEST)
    with expect_revert("Commitments not ready"):  # checked before the match
        task_run.disclose(0, b"\x01" * 8)
    task_run.report_error(2)  # the error marker completes the commitments
    task_run.disclose(0, HONEST)
    assert task_run.info().result_disclosed_rounds == (2, 0)


def test_disclose_not_matching_the_commitment_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    _commit_all(task_run)
    for wrong in (HONEST[:-1] + b"\x00", HONEST + b"\x00" * 8, HONEST[:8]):
        with expect_revert("Mismatch result and commitment"):
            task_run.disclose(1, wrong)
    info = task_run.info()
    assert info.results == (b"",) * 3 and info.result_disclosed_rounds == ()


# ------------------------------------------------------------------ reportTaskError


def test_report_error_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    node = task_run.nodes[0]
    with expect_revert("Task not exist"):
        contracts.task.report_error(node, 2, 0)
    with expect_revert("Round not exist"):
        contracts.task.report_error(node, task_run.id, 3)
    with expect_revert("Not selected node"):
        contracts.task.report_error(node, task_run.id, 1)
    with expect_revert("Not selected node"):
        contracts.task.report_error(contracts.new_account(), task_run.id, 0)
    task_run.commit(0, HONEST)
    with expect_revert("Already submitted"):
        task_run.report_error(0)
    task_run.report_error(1)
    with expect_revert("Already submitted"):
        task_run.report_error(1)
    info = task_run.info()
    assert info.commitments[1] == (1).to_bytes(32, "big")
    assert info.result_disclosed_rounds == (1,)


# ------------------------------------------------------------------ reportResultsUploaded


def test_report_uploaded_reverts(contracts: Deployment, task_run: RunningTask) -> None:
    _commit_all(task_run)
    for r in range(3):  # no result node yet
        with expect_revert("Not result round"):
            task_run.report_uploaded(r)
    task_run.disclose(0, HONEST)
    task_run.disclose(1, HONEST)  # success: result node = round 0
    node = task_run.nodes[0]
    with expect_revert("Task not exist"):
        contracts.task.report_uploaded(node, 2, 0)
    with expect_revert("Round not exist"):
        contracts.task.report_uploaded(node, task_run.id, 3)
    with expect_revert("Not selected node"):
        contracts.task.report_uploaded(node, task_run.id, 1)
    with expect_revert("Not selected node"):
        contracts.task.report_uploaded(contracts.new_account(), task_run.id, 0)
    for r in (1, 2):
        with expect_revert("Not result round"):
            task_run.report_uploaded(r)
    task_run.report_uploaded(0)
    with expect_revert("Results already reported"):  # deviation 4; the task lives on until round 2 discloses
        task_run.report_uploaded(0)


# ------------------------------------------------------------------ TaskResultCommitmentsReady


def test_commitments_ready_once_after_three_commitments(contracts: Deployment, task_run: RunningTask) -> None:
    first = task_run.created.receipt["blockNumber"]
    receipts = [task_run.commit(r, HONEST) for r in (1, 2, 0)]
    assert [event_tuples(contracts, rc) for rc in receipts] == [[], [], [("TaskResultCommitmentsReady", task_run.id)]]
    task_run.disclose(0, HONEST)
    task_run.disclose(1, HONEST)
    task_run.disclose(2, HONEST)
    ready = [e for e in contracts.task.events_between(first, contracts.chain.block_number) if type(e).__name__ == "TaskResultCommitmentsReady"]
    assert len(ready) == 1


@pytest.mark.parametrize("error_position", [0, 1, 2])
def test_commitments_ready_with_one_error_marker(contracts: Deployment, task_run: RunningTask, error_position: int) -> None:
    receipts = []
    for position, r in enumerate((2, 0, 1)):
        receipts.append(task_run.report_error(r) if position == error_position else task_run.commit(r, HONEST))
    assert [event_tuples(contracts, rc) for rc in receipts] == [[], [], [("TaskResultCommitmentsReady", task_run.id)]]


def test_commitments_ready_never_with_two_error_markers(contracts: Deployment, task_run: RunningTask) -> None:
    first = task_run.created.receipt["blockNumber"]
    task_run.commit(0, HONEST)
    task_run.report_error(1)
    last = task_run.report_error(2)  # all 3 set, but 2 are error markers
    assert event_tuples(contracts, last) == [("TaskAborted", task_run.id, "Task error reported")]
    names = [type(e).__name__ for e in contracts.task.events_between(first, contracts.chain.block_number)]
    assert "TaskResultCommitmentsReady" not in names


# ------------------------------------------------------------------ the honest path


@pytest.mark.parametrize("images", [1, 2, 10])
def test_honest_success(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount], images: int) -> None:
    result = (HONEST * 5)[: 8 * images]
    run, task = task_run, contracts.task
    watch = run.balances()
    _commit_all(run, result)
    # Disclosure order rounds 2, 0, 1: d0 = round 2, d1 = round 0, d2 = round 1.
    assert event_tuples(contracts, run.disclose(2, result)) == []
    watch.assert_changes()
    assert event_tuples(contracts, run.disclose(0, result)) == [("TaskSuccess", run.id, result, run.nodes[2].address)]
    watch.assert_changes(r0=FEE, task=-FEE)  # d1 paid at once
    assert run.statuses() == (AVAILABLE, BUSY, BUSY)
    assert run.node_tasks() == (0, run.id, run.id)
    info = run.info()
    assert (info.is_success, info.aborted, info.result_node, info.balance) == (True, False, run.nodes[2].address, 2 * FEE)
    assert info.result_disclosed_rounds == (2, 0)
    assert task.total_success_tasks() == 1
    assert event_tuples(contracts, run.disclose(1, result)) == []
    watch.assert_changes(r0=FEE, r1=FEE, task=-2 * FEE)
    assert run.statuses() == (AVAILABLE, AVAILABLE, BUSY)
    assert run.info().exists  # the result node has not reported its upload
    assert event_tuples(contracts, run.report_uploaded(2)) == []
    watch.assert_changes(r0=FEE, r1=FEE, r2=FEE, task=-3 * FEE)  # d0 paid on reportResultsUploaded
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert task.task_fee(run.id) == 0
    assert (task.total_tasks(), task.total_success_tasks(), task.total_aborted_tasks()) == (1, 1, 0)
    assert contracts.node.available_nodes() == 3
    assert_invariants(contracts, nodes, [run.id])


def test_result_node_reporting_before_the_third_disclosure(contracts: Deployment, task_run: RunningTask) -> None:
    run = task_run
    watch = run.balances()
    _commit_all(run)
    run.disclose(1, HONEST)
    run.disclose(2, HONEST)
    run.report_uploaded(1)  # the result node: paid and freed; round 0 still owes a disclosure
    watch.assert_changes(r1=FEE, r2=FEE, task=-2 * FEE)
    assert run.statuses() == (BUSY, AVAILABLE, AVAILABLE)
    assert run.info().exists
    run.disclose(0, HONEST)
    watch.assert_changes(r0=FEE, r1=FEE, r2=FEE, task=-3 * FEE)
    assert run.info() == EMPTY_TASK
    assert run.node_tasks() == (0, 0, 0)
