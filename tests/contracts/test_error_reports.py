"""Error reports in every order (PROTOCOL.md 3), with f = 10 CNX and a 400 CNX stake.

The order is that of the commits and error reports. The three actors are the
nodes of rounds 2, 0 and 1, in that order (so actor positions differ from rounds).
An error report counts as a disclosure (of an empty result) at once; real results
are disclosed afterwards, in commit order, once all 3 commitments are in.

Worked out by hand from PROTOCOL.md 3:
- err-err-err: the 2nd report makes |d| = 2 with two empty results: both reporters
  paid f, TaskAborted("Task error reported"), aborted and isSuccess both set, no
  real commitment to slash. The 3rd report goes down the "already successful"
  branch, empty vs empty: paid f. App pays 3f in all; task deleted.
- err-err-normal: as above after the 2nd report; the third node cannot commit
  ("Task is aborted"), and the task stays until cancelTask after the deadline:
  the remaining f back to the app, the third node freed unpaid, no second
  TaskAborted. App pays 2f.
- err-normal-err, normal-err-err: the 2nd report aborts as above and slashes the
  node with a real commitment: its f back to the app, its stake to the owner.
  App pays 2f; task deleted.
- one error and two normal results (3 orders): d = [error, n1, n2]; n2 is not
  similar to the empty d0, similar to n1: n2 paid, the error reporter slashed,
  success with n1, paid on reportResultsUploaded. App pays 2f.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import NodeStatus
from tests.contracts.helpers import EMPTY_TASK, FEE, HONEST, STAKE, RunningTask, assert_invariants, event_tuples, flip_bits

AVAILABLE, BUSY, QUIT = NodeStatus.AVAILABLE, NodeStatus.BUSY, NodeStatus.QUIT
ACTORS = (2, 0, 1)  # the round of the 1st, 2nd and 3rd actor
ERROR_ABORT = "Task error reported"


def _name(position: int) -> str:
    """The Balances name of an actor: its round's node."""
    return f"r{ACTORS[position]}"


def _status(run: RunningTask, position: int) -> NodeStatus:
    return run.contracts.node.status(run.nodes[ACTORS[position]].address)


def test_err_err_err(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount]) -> None:
    run, a = task_run, ACTORS
    watch = run.balances()
    assert event_tuples(contracts, run.report_error(a[0])) == []
    watch.assert_changes()
    assert run.statuses() == (BUSY,) * 3
    assert event_tuples(contracts, run.report_error(a[1])) == [("TaskAborted", run.id, ERROR_ABORT)]
    watch.assert_changes(task=-2 * FEE, **{_name(0): FEE, _name(1): FEE})
    assert (_status(run, 0), _status(run, 1), _status(run, 2)) == (AVAILABLE, AVAILABLE, BUSY)
    info = run.info()
    assert (info.aborted, info.is_success, info.balance, info.result_node) == (True, True, FEE, EMPTY_TASK.result_node)
    assert contracts.task.total_aborted_tasks() == 1
    # The third report: no aborted check, paid on the "already successful" branch.
    assert event_tuples(contracts, run.report_error(a[2])) == []
    watch.assert_changes(task=-3 * FEE, r0=FEE, r1=FEE, r2=FEE)
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (0, 1)
    with expect_revert("Task not exist"):
        run.cancel()
    assert_invariants(contracts, nodes, [run.id])


def test_err_err_normal(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount]) -> None:
    run, a = task_run, ACTORS
    watch = run.balances()
    run.report_error(a[0])
    run.report_error(a[1])
    with expect_revert("Task is aborted"):
        run.commit(a[2], HONEST)
    with expect_revert("Commitments not ready"):
        run.disclose(a[2], HONEST)
    watch.assert_changes(task=-2 * FEE, **{_name(0): FEE, _name(1): FEE})
    assert _status(run, 2) == BUSY
    assert run.info().balance == FEE
    # What remains: the deadline passes and the stuck node cancels.
    assert event_tuples(contracts, run.cancel(by=run.nodes[a[2]])) == []  # no second TaskAborted
    watch.assert_changes(app=+FEE, task=-3 * FEE, **{_name(0): FEE, _name(1): FEE})
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (0, 1)
    assert_invariants(contracts, nodes, [run.id])


@pytest.mark.parametrize("normal", [1, 0], ids=["err-normal-err", "normal-err-err"])
def test_two_errors_slash_the_node_with_a_real_commitment(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount], normal: int) -> None:
    run, a = task_run, ACTORS
    errors = [p for p in range(3) if p != normal]
    watch = run.balances()
    receipts = [run.commit(a[p], HONEST) if p == normal else run.report_error(a[p]) for p in range(3)]
    # No TaskResultCommitmentsReady: the commitments are complete but 2 are error markers.
    assert [event_tuples(contracts, rc) for rc in receipts] == [[], [], [("TaskAborted", run.id, ERROR_ABORT)]]
    watch.assert_changes(app=+FEE, task=-3 * FEE, node=-STAKE, owner=+STAKE, **{_name(errors[0]): FEE, _name(errors[1]): FEE})
    assert (_status(run, errors[0]), _status(run, errors[1]), _status(run, normal)) == (AVAILABLE, AVAILABLE, QUIT)
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (2, 2)
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (0, 1)
    with expect_revert("Task not exist"):
        run.cancel()
    assert_invariants(contracts, nodes, [run.id])


@pytest.mark.parametrize("error", [0, 1, 2], ids=["err-normal-normal", "normal-err-normal", "normal-normal-err"])
def test_one_error_and_two_similar_results_slash_the_reporter(
    contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount], error: int
) -> None:
    run, a = task_run, ACTORS
    first, second = (p for p in range(3) if p != error)  # the normal actors, in commit order
    watch = run.balances()
    receipts = [run.report_error(a[p]) if p == error else run.commit(a[p], HONEST) for p in range(3)]
    assert [event_tuples(contracts, rc) for rc in receipts] == [[], [], [("TaskResultCommitmentsReady", run.id)]]
    watch.assert_changes()
    assert event_tuples(contracts, run.disclose(a[first], HONEST)) == []  # d = [error, first]: not similar
    watch.assert_changes()
    success = ("TaskSuccess", run.id, HONEST, run.nodes[a[first]].address)
    assert event_tuples(contracts, run.disclose(a[second], HONEST)) == [success]
    watch.assert_changes(app=+FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE, **{_name(second): FEE})
    assert (_status(run, error), _status(run, first), _status(run, second)) == (QUIT, BUSY, AVAILABLE)
    assert run.info().result_node == run.nodes[a[first]].address
    assert event_tuples(contracts, run.report_uploaded(a[first])) == []
    watch.assert_changes(app=+FEE, task=-3 * FEE, node=-STAKE, owner=+STAKE, **{_name(second): FEE, _name(first): FEE})
    assert (_status(run, first), _status(run, second)) == (AVAILABLE, AVAILABLE)
    assert run.info() == EMPTY_TASK
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (1, 0)
    with expect_revert("Task not exist"):
        run.cancel()
    assert_invariants(contracts, nodes, [run.id])


def test_one_error_and_two_different_results_abort_illegal(contracts: Deployment, task_run: RunningTask) -> None:
    """d = [error, x, y] with x, y not similar: refund 3f, nobody slashed or paid."""
    run, a = task_run, ACTORS
    other = flip_bits(HONEST, 5)
    watch = run.balances()
    run.report_error(a[0])
    run.commit(a[1], HONEST)
    run.commit(a[2], other)
    run.disclose(a[1], HONEST)
    assert event_tuples(contracts, run.disclose(a[2], other)) == [("TaskAborted", run.id, "Task result illegal")]
    watch.assert_changes(app=+3 * FEE, task=-3 * FEE)
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.info() == EMPTY_TASK
    assert contracts.task.total_aborted_tasks() == 1
