"""Which chain the contract tests run on (see conftest.py): revm, unless a test is
marked `eth_tester` or the run says `--contracts-on session`."""

from __future__ import annotations

import pytest

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.chain.revm import RevmBackend


def test_an_unmarked_test_runs_on_revm_unless_the_run_asks_for_the_session_chain(
    contracts: Deployment, hydrogen_chain: Chain, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--contracts-on") == "session":
        assert contracts.chain is hydrogen_chain
    else:
        assert isinstance(contracts.chain.backend, RevmBackend)
        assert contracts.chain is not hydrogen_chain


@pytest.mark.eth_tester
def test_a_test_marked_eth_tester_runs_on_the_session_chain(contracts: Deployment, hydrogen_chain: Chain) -> None:
    assert contracts.chain is hydrogen_chain
    assert not isinstance(contracts.chain.backend, RevmBackend)
