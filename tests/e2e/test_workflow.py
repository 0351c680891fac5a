"""The application workflow end to end, through simulated nodes and the fake Relay."""

from __future__ import annotations

import pytest

from hydrogen_harness.client.app import TaskOutcome
from hydrogen_harness.protocol.events import TaskAborted, TaskSuccess
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.phash import result_bytes, similar
from hydrogen_harness.protocol.constants import CNX, NodeStatus
from tests.e2e.conftest import small_args

FEE = 10 * CNX


def test_happy_path_downloads_the_result_nodes_images(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    before = hydrogen_network.contracts.token.balance_of(app.address)
    key = app.submit(args)
    hydrogen_network.settle()

    result = app.result(key)
    assert result.outcome is TaskOutcome.SUCCESS
    result_node = hydrogen_network.node(result.result_node or "")
    generated = result_node.tasks[result.task_id or 0].images
    assert result.images == generated and len(generated) == 2
    assert result.result == result_bytes(generated)
    assert (result.fees_paid, result.refunds) == (3 * FEE, 0)
    assert hydrogen_network.contracts.token.balance_of(app.address) == before - 3 * FEE
    for node in hydrogen_network.nodes:
        assert hydrogen_network.contracts.token.balance_of(node.address) == FEE
        assert node.status() is NodeStatus.AVAILABLE
    assert not hydrogen_network.contracts.task.get_task(result.task_id or 0).exists


@pytest.mark.hydrogen_nodes("jitter", "honest", "jitter")
def test_jitter_within_the_threshold_still_succeeds(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    key = app.submit(args)
    hydrogen_network.settle()
    result = app.result(key)
    assert result.outcome is TaskOutcome.SUCCESS
    honest, jitters = hydrogen_network.nodes[1], [hydrogen_network.nodes[0], hydrogen_network.nodes[2]]
    task_id = result.task_id or 0
    for node in jitters:
        assert node.tasks[task_id].images != honest.tasks[task_id].images, "jitter must change the pixels"
        assert similar(node.tasks[task_id].result, honest.tasks[task_id].result, 5)
    for node in hydrogen_network.nodes:
        assert hydrogen_network.contracts.token.balance_of(node.address) == FEE


@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_cheater_in_each_disclosure_position_is_slashed(position: int, hydrogen_contracts, args: dict) -> None:
    behaviours = ["honest", "honest", "honest"]
    behaviours[position] = "cheater"
    network = Network(nodes=behaviours, chain=hydrogen_contracts.chain, deployment=hydrogen_contracts)
    app = network.add_app()
    owner_before = hydrogen_contracts.token.balance_of(hydrogen_contracts.node.owner())
    key = app.submit(args)
    network.settle()

    result = app.result(key)
    cheater = network.nodes[position]
    assert result.outcome is TaskOutcome.SUCCESS
    assert result.result_node != cheater.address
    assert (result.fees_paid, result.refunds) == (3 * FEE, FEE)
    assert cheater.status() is NodeStatus.QUIT
    assert hydrogen_contracts.token.balance_of(cheater.address) == 0
    assert hydrogen_contracts.token.balance_of(hydrogen_contracts.node.owner()) == owner_before + 400 * CNX
    for honest in (n for n in network.nodes if n is not cheater):
        assert hydrogen_contracts.token.balance_of(honest.address) == FEE
    # disclosure order follows the stepping order, so the cheater was d{position}
    disclosed = hydrogen_contracts.task.get_task(result.task_id or 0)
    assert not disclosed.exists


@pytest.mark.hydrogen_nodes("cheater", "cheater", "honest")
def test_three_disagreeing_results_refund_everything(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    before = hydrogen_network.contracts.token.balance_of(app.address)
    key = app.submit(args)
    hydrogen_network.settle()
    result = app.result(key)
    assert result.outcome is TaskOutcome.ABORTED
    assert result.abort_reason == "Task result illegal"
    assert (result.fees_paid, result.refunds) == (3 * FEE, 3 * FEE)
    assert hydrogen_network.contracts.token.balance_of(app.address) == before
    assert all(n.status() is NodeStatus.AVAILABLE for n in hydrogen_network.nodes)


def test_args_no_node_can_run_are_reported_and_all_reporters_paid(hydrogen_network: Network) -> None:
    app = hydrogen_network.add_app()
    # Valid by the schema, but larger than any (simulated) GPU can paint.
    key = app.submit(small_args(size=5000, images=1))
    hydrogen_network.settle()
    result = app.result(key)
    assert result.outcome is TaskOutcome.ABORTED
    assert result.abort_reason == "Task error reported"
    assert (result.fees_paid, result.refunds) == (3 * FEE, 0)
    for node in hydrogen_network.nodes:
        assert hydrogen_network.contracts.token.balance_of(node.address) == FEE
        assert node.status() is NodeStatus.AVAILABLE


@pytest.mark.hydrogen_nodes("error", "honest", "honest")
def test_an_error_reporter_among_agreeing_nodes_is_slashed(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    key = app.submit(args)
    hydrogen_network.settle()
    result = app.result(key)
    reporter = hydrogen_network.nodes[0]
    assert result.outcome is TaskOutcome.SUCCESS
    assert (result.fees_paid, result.refunds) == (3 * FEE, FEE)
    assert reporter.status() is NodeStatus.QUIT


def test_not_enough_nodes_reverts_before_any_payment(hydrogen_contracts, args: dict, hydrogen_expect_revert) -> None:
    network = Network(nodes=["honest", "honest"], chain=hydrogen_contracts.chain, deployment=hydrogen_contracts)
    app = network.add_app()
    before = hydrogen_contracts.token.balance_of(app.address)
    with hydrogen_expect_revert("Not enough nodes"):
        app.submit(args)
    assert hydrogen_contracts.token.balance_of(app.address) == before
    assert hydrogen_contracts.task.total_tasks() == 0


def test_events_are_seen_in_protocol_order(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app()
    app.submit(args)
    success = hydrogen_network.wait_for_event(TaskSuccess)
    assert success.task_id == 1
    hydrogen_network.settle()
    kinds = [type(e).__name__ for e in hydrogen_network.events]
    assert kinds == ["TaskCreated"] * 3 + ["TaskResultCommitmentsReady", "TaskSuccess"]
    assert not any(isinstance(e, TaskAborted) for e in hydrogen_network.events)
