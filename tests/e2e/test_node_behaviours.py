"""Slow, offline and paused or quitting nodes, end to end."""

from __future__ import annotations

import pytest

from hydrogen_harness.client.app import TaskOutcome
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, NodeStatus

FEE = 10 * CNX


@pytest.mark.hydrogen_nodes("slow:4", "honest", "slow:3")
def test_slow_nodes_take_more_steps_but_finish(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    key = app.submit(args)
    steps = hydrogen_network.settle()
    assert app.result(key).outcome is TaskOutcome.SUCCESS
    assert steps > 8, "a node acting every 4th step cannot finish in the usual 6 steps"


@pytest.mark.hydrogen_nodes("offline", "honest", "honest")
def test_an_offline_node_stalls_the_task_until_it_is_cancelled(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    before = hydrogen_network.contracts.token.balance_of(app.address)
    key = app.submit(args)
    hydrogen_network.settle()
    result = app.result(key)
    assert (result.outcome, result.abort_reason) == (TaskOutcome.ABORTED, "Task Cancelled")
    assert hydrogen_network.contracts.token.balance_of(app.address) == before
    assert hydrogen_network.chain.now() > (app.store.jobs[key].deadline or 0)


@pytest.mark.hydrogen_nodes("offline", "honest", "honest")
def test_two_tasks_stalled_by_an_offline_node_are_both_cancelled(hydrogen_network: Network, args: dict) -> None:
    """The offline node keeps the first task's deadline after it was cancelled: settle
    must move the clock to the second task's deadline, not stop at the stale one."""
    app = hydrogen_network.add_app()
    before = hydrogen_network.contracts.token.balance_of(app.address)
    keys = []
    for _ in range(2):  # three nodes: one task at a time
        keys.append(app.submit(args))
        hydrogen_network.settle()
    assert [app.result(k).abort_reason for k in keys] == ["Task Cancelled", "Task Cancelled"]
    assert hydrogen_network.contracts.token.balance_of(app.address) == before


def test_pause_and_quit_requested_while_busy_take_effect_when_the_task_ends(hydrogen_contracts: Deployment, args: dict) -> None:
    network = Network(nodes=["honest"] * 3, chain=hydrogen_contracts.chain, deployment=hydrogen_contracts)
    app = network.add_app()
    key = app.submit(args)
    pausing, quitting, _ = network.nodes
    pausing.request("pause")
    quitting.request("quit")
    network.step()
    assert pausing.status() is NodeStatus.PENDING_PAUSE
    assert quitting.status() is NodeStatus.PENDING_QUIT
    network.settle()
    assert app.result(key).outcome is TaskOutcome.SUCCESS
    assert pausing.status() is NodeStatus.PAUSED
    assert quitting.status() is NodeStatus.QUIT
    assert hydrogen_contracts.token.balance_of(quitting.address) == STAKE_AMOUNT + FEE
    pausing.request("resume")
    network.step()
    assert pausing.status() is NodeStatus.AVAILABLE
    assert hydrogen_contracts.node.available_nodes() == 2


def test_a_node_request_that_reverts_is_recorded_not_raised(hydrogen_network: Network) -> None:
    node = hydrogen_network.nodes[0]
    node.request("resume")  # an AVAILABLE node cannot resume
    hydrogen_network.step()
    assert (None, "resume reverted: Illegal node status") in [(a.task_id, a.what) for a in node.actions]
    with pytest.raises(ValueError, match="not 'dance'"):
        node.request("dance")
