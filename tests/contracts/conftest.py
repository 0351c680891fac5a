"""Fixtures of the contract tests; the plain helpers they use are in helpers.py.

Every test runs in its own chain snapshot, so a fixture may change anything.

The contracts are what these tests check, not the chain under them, so
`contracts` is the deployment on revm (`revm_contracts`): the whole directory
takes seconds there instead of a minute and a half on eth-tester. revm gives
what eth-tester gives (the same gas, receipts, events and ledger:
tests/e2e/test_backends_agree.py). Tests marked `eth_tester` get the session's
chain instead (the plugin's `hydrogen_contracts`: eth-tester unless
--hydrogen-backend or --hydrogen-rpc-url say otherwise): those that use web3
behind `chain.w3`, eth_estimateGas, or the seeded prevrandao of both blocks.
`pytest tests/contracts --contracts-on session` runs every test on the
session's chain (and so on eth-tester, or against a node such as anvil).
`revm_contracts` itself is for the tests that need hundreds of transactions
whatever the option says.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.constants import CNX
from tests.contracts.helpers import JoinNodes, RunningTask, start_task


def _joiner(deployment: Deployment) -> JoinNodes:
    def join(count: int) -> dict[str, LocalAccount]:
        accounts = [deployment.new_node() for _ in range(count)]
        return {account.address: account for account in accounts}

    return join


def _app(deployment: Deployment) -> LocalAccount:
    return deployment.new_app(cnx=1000 * CNX, approve=1000 * CNX)


@pytest.fixture
def contracts(request: pytest.FixtureRequest) -> Deployment:
    """CNX, Node and Task deployed and wired, isolated per test: on revm, or on the
    session's chain for tests marked `eth_tester` and under `--contracts-on session`."""
    if request.node.get_closest_marker("eth_tester") or request.config.getoption("--contracts-on") == "session":
        deployment: Deployment = request.getfixturevalue("hydrogen_contracts")
    else:
        deployment = request.getfixturevalue("revm_contracts")
    return deployment


@pytest.fixture
def join_nodes(contracts: Deployment) -> JoinNodes:
    """`join_nodes(n)` joins n fresh nodes (400 CNX staked each, 0 CNX left) and
    returns them as a dict address -> account, in joining order."""
    return _joiner(contracts)


@pytest.fixture
def app(contracts: Deployment) -> LocalAccount:
    """An application wallet with 1000 CNX, all of it approved to the Task contract."""
    return _app(contracts)


@pytest.fixture
def nodes(join_nodes: JoinNodes) -> dict[str, LocalAccount]:
    """Exactly 3 joined nodes, so a task selects all of them."""
    return join_nodes(3)


@pytest.fixture
def task_run(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> RunningTask:
    """A task created by `app` over the 3 `nodes` (task id 1, default fee 10 CNX)."""
    return start_task(contracts, app, nodes)


@pytest.fixture
def revm_contracts(revm_deployment: Deployment) -> Iterator[Deployment]:
    """CNX, Node and Task on revm (seeded by --hydrogen-seed), isolated per test as
    `contracts` is."""
    with revm_deployment.chain.isolation():
        yield revm_deployment


@pytest.fixture
def revm_join_nodes(revm_contracts: Deployment) -> JoinNodes:
    """`join_nodes` on `revm_contracts`."""
    return _joiner(revm_contracts)


@pytest.fixture
def revm_app(revm_contracts: Deployment) -> LocalAccount:
    """`app` on `revm_contracts`."""
    return _app(revm_contracts)
