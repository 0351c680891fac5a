"""The same seeded simulation on eth-tester and on revm gives the same results: the
same signed transactions (so the same hashes), the same gas, fees, events, ledger,
node selection, outcomes and timeline. Only block hashes may differ (revm hashes no
state), so they are left out of the comparison of receipts and logs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.ledger import MovementKind
from hydrogen_harness.cli.main import main
from hydrogen_harness.client.app import TaskOutcome, TaskResult
from hydrogen_harness.protocol.events import TaskCreated
from hydrogen_harness.sim.network import Network
from tests.e2e.conftest import small_args

SEED = 11
COINBASE = "0x" + "00" * 20


@dataclass
class Run:
    network: Network
    results: list[TaskResult]
    receipts: list[dict[str, Any]]
    eth: dict[str, int]


def _simulate(chain: Chain) -> Run:
    """A cheater slashed, a task aborted by an explicit timeout (an offline node was
    selected), then tasks among a crashing node and others, settled with deadlines."""
    sent: list[str] = []
    send_raw = chain.backend.send_raw

    def recorded(raw: bytes) -> str:
        sent.append(send_raw(raw))
        return sent[-1]

    chain.backend.send_raw = recorded  # type: ignore[method-assign]
    network = Network(seed=SEED, nodes=["honest", "jitter", "cheater"], chain=chain)
    app = network.add_app()
    keys = [app.submit(small_args("a red fox in snow", images=1))]
    network.settle()

    # The cheater was slashed: with an offline node, the next task selects it.
    network.add_node("offline")
    keys.append(app.submit(small_args("a city of glass", images=1)))
    network.run_until(lambda: app.store.jobs[keys[-1]].deadline is not None)
    network.advance(network.contracts.task.timeout() + 1)
    network.settle(advance_deadlines=False)

    for behaviour in ("honest", "honest+crash:before_commit", "error"):
        network.add_node(behaviour)
    for prompt in ("a bowl of ramen", "mountains under aurora", "an old map of the sea"):
        keys.append(app.submit(small_args(prompt, images=1)))
        network.settle()
    network.ledger.sync()

    parties = [chain.faucet.address, COINBASE, app.address, *(node.address for node in network.nodes)]
    return Run(
        network=network,
        results=[app.result(key) for key in keys],
        receipts=[dict(chain.backend.receipt(tx_hash) or {}) for tx_hash in sent],
        eth={address: chain.eth_balance(address) for address in parties},
    )


@pytest.fixture(scope="module")
def runs() -> tuple[Run, Run]:
    return _simulate(Chain.in_memory(seed=SEED)), _simulate(Chain.revm(seed=SEED))


def _without_block_hashes(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt as both backends must give it: all but the block hashes."""
    logs = [{k: v for k, v in dict(log).items() if k != "blockHash"} for log in receipt["logs"]]
    return {**{k: v for k, v in receipt.items() if k != "blockHash"}, "logs": logs}


def test_the_scenario_covers_success_slashing_and_aborts(runs: tuple[Run, Run]) -> None:
    tester, _ = runs
    outcomes = [r.outcome for r in tester.results]
    assert outcomes[0] is TaskOutcome.SUCCESS
    assert outcomes[1] is TaskOutcome.ABORTED, "the offline node's task is cancelled after the explicit advance"
    assert TaskOutcome.ABORTED in outcomes[2:] and TaskOutcome.SUCCESS in outcomes[2:]
    kinds = {m.kind for m in tester.network.ledger.movements}
    assert {MovementKind.FEE, MovementKind.REFUND, MovementKind.STAKE_SLASHED} <= kinds
    assert any(entry.actor == "clock" for entry in tester.network.timeline)
    assert any(r["status"] == 0 for r in tester.receipts), "failed transactions are compared too"


@pytest.mark.parametrize(
    "aspect",
    [
        pytest.param(lambda run: [r.outcome for r in run.results], id="outcomes"),
        pytest.param(lambda run: run.results, id="results"),
        pytest.param(lambda run: [(e.task_id, e.round, e.selected_node) for e in run.network.events if isinstance(e, TaskCreated)], id="selected-nodes"),
        pytest.param(lambda run: run.network.events, id="task-events"),
        pytest.param(lambda run: run.network.ledger.movements, id="ledger"),
        pytest.param(lambda run: run.network.timeline, id="timeline"),
        pytest.param(lambda run: [r["transactionHash"] for r in run.receipts], id="tx-hashes"),
        pytest.param(lambda run: [(r["gasUsed"], r["effectiveGasPrice"], r["status"]) for r in run.receipts], id="gas"),
        pytest.param(lambda run: [_without_block_hashes(r) for r in run.receipts], id="receipts"),
        pytest.param(lambda run: run.eth, id="eth-balances"),
        pytest.param(lambda run: [(n.name, n.status(), n.deployment.token.balance_of(n.address)) for n in run.network.nodes], id="nodes"),
        pytest.param(lambda run: (run.network.chain.block_number, run.network.chain.now()), id="head"),
    ],
)
def test_revm_gives_what_eth_tester_gives(runs: tuple[Run, Run], aspect: Callable[[Run], Any]) -> None:
    tester, revm = runs
    assert aspect(revm) == aspect(tester)


def test_block_hashes_are_consistent_on_revm(runs: tuple[Run, Run]) -> None:
    """revm's own block hashes: what receipts and logs carry is what block_hash says."""
    _, revm = runs
    chain = revm.network.chain
    for receipt in revm.receipts:
        assert receipt["blockHash"] == chain.block_hash(receipt["blockNumber"])
        assert all(log["blockHash"] == receipt["blockHash"] for log in receipt["logs"])
    hashes = {chain.block_hash(n) for n in range(chain.block_number + 1)}
    assert len(hashes) == chain.block_number + 1


def test_simulate_on_revm_writes_the_report_eth_tester_writes(tmp_path: Path) -> None:
    argv = ["simulate", "--tasks", "2", "--nodes", "4", "--images", "1", "--size", "64", "--seed", "3", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "tester")]) == 0
    assert main([*argv, "--backend", "revm", "--out", str(tmp_path / "revm")]) == 0
    report = (tmp_path / "revm" / "report.json").read_text()
    assert report == (tmp_path / "tester" / "report.json").read_text()
    assert '"outcome": "success"' in report
