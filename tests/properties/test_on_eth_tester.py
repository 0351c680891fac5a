"""The property tests again, on the in-memory eth-tester chain, with a small budget.

The other files of this folder run on revm by default (HYDROGEN_BACKEND), where their
whole budget costs seconds instead of a minute. The contracts, bindings and ghost model
are the same on both chains (tests/e2e/test_backends_agree.py compares them), but
eth-tester is what `hydrogen_contracts`, `hydrogen_network` and the sandbox run on, so
these runs keep the properties checked there: real signed transactions, blocks,
eth-tester's snapshots under the machine's isolation, and its pending block for
`getSelectedNode`. Same seed, same rules and invariants; only fewer examples
(`Budget.machine_on_eth_tester`, `Budget.pure_on_eth_tester`).
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from hydrogen_harness.chain.tester import TesterBackend
from tests.properties.profiles import RunStats, budget, seeded
from tests.properties.test_pure import (
    Probe,
    check_commitments,
    check_selection,
    check_similarity_on_chain,
    check_similarity_probe,
    deploy_probe,
)
from tests.properties.test_settlement_machine import SettlementMachine
from tests.properties.world import World


def test_settlement_machine_on_eth_tester(tester_world: World) -> None:
    """A few runs of the settlement machine (the profile's steps each) on eth-tester."""
    assert isinstance(tester_world.chain.backend, TesterBackend)
    stats = RunStats(name="settlement machine on eth-tester")

    def machine() -> SettlementMachine:
        return SettlementMachine(tester_world, stats)

    run_state_machine_as_test(seeded(machine), settings=settings(max_examples=budget().machine_on_eth_tester))
    print(f"\n{stats.summary()}")
    # A run Hypothesis drops as invalid checks nothing: at least one must have gone through.
    assert stats.runs >= 1, stats.summary()


@pytest.fixture(scope="module")
def tester_probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    return deploy_probe(tmp_path_factory.mktemp("probe"), "in-memory")


def test_similarity_probe_on_eth_tester(tester_probe: Probe) -> None:
    check_similarity_probe(tester_probe, budget().pure_on_eth_tester)


def test_similarity_on_chain_on_eth_tester(tester_world: World) -> None:
    check_similarity_on_chain(tester_world, budget().pure_on_eth_tester)


def test_commitment_check_on_eth_tester(tester_world: World) -> None:
    check_commitments(tester_world, budget().pure_on_eth_tester)


def test_selection_on_eth_tester(tester_world: World) -> None:
    check_selection(tester_world, budget().pure_on_eth_tester)
