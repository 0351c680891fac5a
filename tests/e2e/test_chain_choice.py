"""The chain under tests/e2e's in-process network: revm by default, the session's chain
(eth-tester here) under `--e2e-on session` (conftest.py)."""

from __future__ import annotations

import pytest

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.sim.network import Network


def test_the_network_and_the_contracts_stand_on_the_chosen_chain(
    hydrogen_network: Network, hydrogen_contracts: Deployment, request: pytest.FixtureRequest
) -> None:
    expected = "RevmBackend" if request.config.getoption("--e2e-on") == "revm" else "TesterBackend"
    assert hydrogen_network.chain is hydrogen_contracts.chain
    assert type(hydrogen_network.chain.backend).__name__ == expected


def test_the_session_chain_outside_the_network_is_the_plugins(hydrogen_chain: Chain, hydrogen_network: Network, request: pytest.FixtureRequest) -> None:
    assert type(hydrogen_chain.backend).__name__ == "TesterBackend"
    assert (hydrogen_network.chain is hydrogen_chain) == (request.config.getoption("--e2e-on") == "session")
