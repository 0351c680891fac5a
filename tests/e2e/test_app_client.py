"""The application client: funds, allowance modes, alerts, watching, restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hydrogen_harness.client.app import AllowanceMode, InsufficientFunds, TaskOutcome, WatchMode
from hydrogen_harness.client.store import ProgressStore
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.protocol.reverts import RevertError
from hydrogen_harness.sim.simulate import run_simulation
from hydrogen_harness.protocol.task_args import TaskArgsError
from tests.e2e.conftest import Crash, crash_at, restart, small_args

FEE = 10 * CNX


def test_not_enough_cnx_is_refused_before_sending_anything(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app(cnx=29 * CNX)
    block = hydrogen_network.chain.block_number
    with pytest.raises(InsufficientFunds, match=f"holds {29 * CNX} CNX units but a task costs {30 * CNX}"):
        app.submit(args)
    assert hydrogen_network.chain.block_number == block
    assert app.store.jobs == {}


def test_no_eth_is_refused_before_sending_anything(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app(eth=0)
    with pytest.raises(InsufficientFunds, match="holds 0 wei"):
        app.submit(args)
    assert hydrogen_network.contracts.task.total_tasks() == 0


def test_no_allowance_reverts_with_the_contracts_reason(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app(allowance=AllowanceMode.MANUAL)
    with pytest.raises(RevertError) as caught:
        app.submit(args, key="no-allowance")
    assert caught.value.reason == "Not enough allowance for task"
    assert app.result("no-allowance").outcome is TaskOutcome.FAILED
    assert hydrogen_network.contracts.token.balance_of(app.address) == 1000 * CNX


def test_invalid_args_are_refused_with_the_field(hydrogen_network: Network) -> None:
    app = hydrogen_network.add_app()
    bad = small_args()
    bad["task_config"]["num_images"] = 11
    with pytest.raises(TaskArgsError) as caught:
        app.submit(bad)
    assert caught.value.field == "task_config.num_images"
    assert hydrogen_network.contracts.task.total_tasks() == 0


def test_unlimited_allowance_is_approved_once_and_task_found_by_topic(hydrogen_network: Network) -> None:
    app = hydrogen_network.add_app(allowance=AllowanceMode.UNLIMITED)
    first = app.submit(small_args(prompt="one"))
    hydrogen_network.settle()
    second = app.submit(small_args(prompt="two"))
    hydrogen_network.settle()
    assert [app.result(k).outcome for k in (first, second)] == [TaskOutcome.SUCCESS] * 2
    assert [a.what for a in app.actions if a.what.startswith("approve")] == ["approve unlimited"]
    receipt = hydrogen_network.chain.find_receipt(app.store.jobs[second].create_tx_hash)
    assert receipt is not None
    assert len(receipt["logs"]) == 4, "no Approval log under an infinite allowance"


def test_polling_get_task_reaches_the_same_outcome(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app(watch=WatchMode.POLL)
    key = app.submit(args)
    hydrogen_network.settle()
    result = app.result(key)
    assert result.outcome is TaskOutcome.SUCCESS and len(result.images) == 2


@pytest.mark.hydrogen_nodes("cheater", "cheater", "honest")
def test_polling_reads_the_abort_reason_from_logs_once_the_task_is_deleted(hydrogen_network: Network, args: dict) -> None:
    app = hydrogen_network.add_app(watch=WatchMode.POLL)
    key = app.submit(args)
    hydrogen_network.settle()
    assert app.result(key).abort_reason == "Task result illegal"


def test_balance_alert_fires_before_the_wallet_cannot_pay_the_next_task(hydrogen_network: Network) -> None:
    alerts = []
    app = hydrogen_network.add_app(cnx=60 * CNX, alert=alerts.append)
    assert app.check_balance() is None
    app.submit(small_args(prompt="first"))
    assert len(alerts) == 1
    assert (alerts[0].cnx, alerts[0].cnx_needed) == (30 * CNX, 30 * CNX)
    assert "the next task needs" in alerts[0].message


CHECKPOINTS = ["submitted", "signed", "sent", "created", "uploaded", "downloaded"]


@pytest.mark.parametrize("point", CHECKPOINTS)
def test_a_restarted_app_resumes_without_paying_twice(point: str, hydrogen_network: Network, args: dict, tmp_path: Path) -> None:
    store_path = tmp_path / "progress.json"
    app = hydrogen_network.add_app(store=ProgressStore(store_path))
    before = hydrogen_network.contracts.token.balance_of(app.address)
    crash_at(app, point)
    with pytest.raises(Crash):
        app.submit(args, key="job-1")
        hydrogen_network.settle()

    again = restart(hydrogen_network, app, store_path)
    assert again.submit(args, key="job-1") == "job-1", "the same key is the same job"
    hydrogen_network.settle()
    result = again.result("job-1")
    assert result.outcome is TaskOutcome.SUCCESS
    assert len(result.images) == 2
    assert hydrogen_network.contracts.task.total_tasks() == 1
    assert hydrogen_network.contracts.token.balance_of(app.address) == before - 3 * FEE
    assert json.loads(store_path.read_text())["jobs"]["job-1"]["phase"] == "completed"


def test_one_seed_gives_one_report(tmp_path: Path) -> None:
    mix = ["honest", "honest", "jitter", "cheater"]
    first = run_simulation(tasks=2, nodes=mix, seed=7, images=1, size=64, out=tmp_path / "a")
    second = run_simulation(tasks=2, nodes=mix, seed=7, images=1, size=64, out=tmp_path / "b")
    other = run_simulation(tasks=2, nodes=mix, seed=8, images=1, size=64, out=tmp_path / "c")
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()
    assert first.to_json() == second.to_json()
    assert other.to_json() != first.to_json()
    assert (tmp_path / "a" / "images" / "task1-0.png").read_bytes() == (tmp_path / "b" / "images" / "task1-0.png").read_bytes()
