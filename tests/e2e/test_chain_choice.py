"""The chain under tests/e2e's in-process network: revm by default, the session's chain
under `--e2e-on session` (eth-tester unless --hydrogen-backend or --hydrogen-rpc-url say
otherwise; conftest.py)."""

from __future__ import annotations

import pytest

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.sim.network import Network


def test_the_in_process_network_stands_on_the_chosen_chain(
    hydrogen_chain: Chain, hydrogen_network: Network, hydrogen_contracts: Deployment, request: pytest.FixtureRequest
) -> None:
    assert hydrogen_network.chain is hydrogen_contracts.chain
    if request.config.getoption("--e2e-on") == "session":
        assert hydrogen_network.chain is hydrogen_chain  # eth-tester, or what --hydrogen-backend names
    else:
        assert hydrogen_network.chain is not hydrogen_chain
        assert type(hydrogen_network.chain.backend).__name__ == "RevmBackend"
