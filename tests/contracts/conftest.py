"""Fixtures of the contract tests; the plain helpers they use are in helpers.py.

Every test runs in its own chain snapshot (the plugin's `hydrogen_contracts`,
named `contracts` in tests/conftest.py), so a fixture may change anything.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.constants import CNX
from tests.contracts.helpers import JoinNodes, RunningTask, start_task


@pytest.fixture
def join_nodes(contracts: Deployment) -> JoinNodes:
    """`join_nodes(n)` joins n fresh nodes (400 CNX staked each, 0 CNX left) and
    returns them as a dict address -> account, in joining order."""

    def join(count: int) -> dict[str, LocalAccount]:
        accounts = [contracts.new_node() for _ in range(count)]
        return {account.address: account for account in accounts}

    return join


@pytest.fixture
def app(contracts: Deployment) -> LocalAccount:
    """An application wallet with 1000 CNX, all of it approved to the Task contract."""
    return contracts.new_app(cnx=1000 * CNX, approve=1000 * CNX)


@pytest.fixture
def nodes(join_nodes: JoinNodes) -> dict[str, LocalAccount]:
    """Exactly 3 joined nodes, so a task selects all of them."""
    return join_nodes(3)


@pytest.fixture
def task_run(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> RunningTask:
    """A task created by `app` over the 3 `nodes` (task id 1, default fee 10 CNX)."""
    return start_task(contracts, app, nodes)
