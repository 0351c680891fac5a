"""Crashed nodes, timeouts, cancellations and Relay outages, end to end."""

from __future__ import annotations

import re

import httpx
import pytest

from hydrogen_harness.client.app import TaskOutcome
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.constants import CNX, NodeStatus

FEE = 10 * CNX

# (crashing node's position, crash point) -> (outcome, abort reason, refunds in fees)
# Position 0 discloses first, so it is the result node when it discloses at all.
CRASHES = {
    (0, "before_commit"): (TaskOutcome.ABORTED, "Task Cancelled", 3),
    (0, "after_commit"): (TaskOutcome.SUCCESS, None, 1),
    (0, "before_disclose"): (TaskOutcome.SUCCESS, None, 1),
    (0, "before_upload"): (TaskOutcome.ABORTED, "Task Cancelled", 1),
    (0, "before_report"): (TaskOutcome.SUCCESS, None, 1),
    (2, "before_commit"): (TaskOutcome.ABORTED, "Task Cancelled", 3),
    (2, "after_commit"): (TaskOutcome.SUCCESS, None, 1),
    (2, "before_disclose"): (TaskOutcome.SUCCESS, None, 1),
}


@pytest.mark.parametrize(("position", "point"), list(CRASHES))
def test_a_crashed_node_is_resolved_by_timeout_and_cancel(
    position: int, point: str, hydrogen_contracts: Deployment, args: dict
) -> None:
    behaviours = ["honest"] * 3
    behaviours[position] = f"honest+crash:{point}"
    network = Network(nodes=behaviours, chain=hydrogen_contracts.chain, deployment=hydrogen_contracts)
    app = network.add_app()
    before = hydrogen_contracts.token.balance_of(app.address)
    key = app.submit(args)
    network.settle()

    task_id = app.store.jobs[key].task_id or 0
    if hydrogen_contracts.task.get_task(task_id).exists:
        # The app got its images but the crashed node left fees in escrow: reclaim them.
        network.advance(hydrogen_contracts.task.timeout() + 1)
        app.cancel(key)
    outcome, reason, refunded_fees = CRASHES[(position, point)]
    result = app.result(key)
    assert result.outcome is outcome
    assert result.abort_reason == reason
    assert (result.fees_paid, result.refunds) == (3 * FEE, refunded_fees * FEE)
    assert hydrogen_contracts.token.balance_of(app.address) == before - (3 - refunded_fees) * FEE
    assert not hydrogen_contracts.task.get_task(task_id).exists
    crashed = network.nodes[position]
    assert crashed.crashed
    paid = [hydrogen_contracts.token.balance_of(n.address) for n in network.nodes]
    assert paid[position] == 0
    assert sum(paid) == (3 - refunded_fees) * FEE
    assert all(n.status() is NodeStatus.AVAILABLE for n in network.nodes), "cancel frees every node"
    if outcome is TaskOutcome.SUCCESS:
        assert len(result.images) == 2


def test_result_node_never_uploading_gives_success_then_cancelled(hydrogen_contracts: Deployment, args: dict) -> None:
    network = Network(nodes=["honest+crash:before_upload", "honest", "honest"], chain=hydrogen_contracts.chain, deployment=hydrogen_contracts)
    app = network.add_app()
    key = app.submit(args)
    network.settle()
    kinds = [(type(e).__name__, getattr(e, "reason", None)) for e in network.events if type(e).__name__ in ("TaskSuccess", "TaskAborted")]
    assert kinds == [("TaskSuccess", None), ("TaskAborted", "Task Cancelled")]
    job = app.store.jobs[key]
    assert job.succeeded_before_abort and job.images_downloaded == 0


def test_app_and_nodes_ride_out_relay_5xx_bursts(hydrogen_network: Network, args: dict) -> None:
    faults = hydrogen_network.faults
    faults.fail_next(3, "POST", "/v1/inference_tasks", status=503)
    faults.fail_next(12, "GET", re.compile(r"^/v1/inference_tasks/\d+$"), status=502)
    faults.fail_next(4, "GET", re.compile(r"/results/\d+$"), error=httpx.ConnectError)
    app = hydrogen_network.add_app()
    key = app.submit(args)
    hydrogen_network.settle()
    assert app.result(key).outcome is TaskOutcome.SUCCESS
    failures = [e for e in hydrogen_network.timeline if e.what.endswith(("-> 503", "-> 502"))]
    assert len(failures) == 3 + 12


def test_a_lost_upload_answer_is_not_uploaded_twice(hydrogen_network: Network, args: dict) -> None:
    faults = hydrogen_network.faults
    faults.fail_next(1, "POST", re.compile(r"/results$"), error=httpx.ReadTimeout, after_delivery=True)
    app = hydrogen_network.add_app()
    key = app.submit(args)
    hydrogen_network.settle()
    result = app.result(key)
    assert result.outcome is TaskOutcome.SUCCESS
    result_node = hydrogen_network.node(result.result_node or "")
    assert hydrogen_network.contracts.token.balance_of(result_node.address) == FEE, "reported after the lost answer"


def test_a_relay_down_for_many_steps_delays_but_does_not_fail(hydrogen_network: Network, args: dict) -> None:
    hydrogen_network.faults.fail_next(40, "GET", re.compile(r"^/v1/inference_tasks/\d+$"), error=httpx.ConnectError)
    app = hydrogen_network.add_app()
    key = app.submit(args)
    hydrogen_network.settle()
    assert app.result(key).outcome is TaskOutcome.SUCCESS
