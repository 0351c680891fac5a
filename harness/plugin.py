"""pytest plugin of hydrogen-harness, registered through the `pytest11` entry point.

Installing the package is all a user needs: these fixtures and options appear in
`pytest --fixtures` and `pytest --help`. Each test runs inside a chain snapshot
taken after deployment, so tests never see each other's transactions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from harness.chain import Chain
from harness.contracts import Deployment, deploy
from harness.reverts import RevertError

if TYPE_CHECKING:
    from fakes.node import SimulatedNode
    from fakes.relay import RelayService
    from harness.app import Application
    from harness.network import Network

__all__ = ["expect_revert"]

DEFAULT_NODES = ("honest", "honest", "honest")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hydrogen-harness")
    group.addoption(
        "--hydrogen-seed",
        type=int,
        default=0,
        help="seed of the simulated network (chain randomness, node keys, images); default 0",
    )
    group.addoption(
        "--hydrogen-rpc-url",
        default=None,
        help="run against this JSON-RPC node (e.g. anvil) instead of the in-memory chain",
    )
    group.addoption(
        "--hydrogen-backend",
        choices=("in-memory", "revm"),
        default="in-memory",
        help="the chain under the fixtures: eth-tester (in-memory, default) or revm (fast, contracts only)",
    )
    group.addoption(
        "--hydrogen-rpc-key",
        default=None,
        help="private key that pays for deployment on --hydrogen-rpc-url (default: anvil's first account)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hydrogen_nodes(count, *behaviours): node count and behaviours of hydrogen_network")


# anvil's well-known first development account, used only against --hydrogen-rpc-url.
_ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@pytest.fixture(scope="session")
def hydrogen_chain(request: pytest.FixtureRequest) -> Chain:
    """The chain for this test session (per xdist worker): in-memory, seeded by
    `--hydrogen-seed`, or the node given by `--hydrogen-rpc-url`."""
    seed = request.config.getoption("--hydrogen-seed")
    url = request.config.getoption("--hydrogen-rpc-url")
    if url:
        key = request.config.getoption("--hydrogen-rpc-key") or _ANVIL_KEY
        return Chain.from_rpc(url, key, seed=seed)
    if request.config.getoption("--hydrogen-backend") == "revm":
        return Chain.revm(seed=seed)
    return Chain.in_memory(seed=seed)


@pytest.fixture(scope="session")
def _hydrogen_session_deployment(hydrogen_chain: Chain) -> Deployment:
    return deploy(hydrogen_chain)


@pytest.fixture
def hydrogen_contracts(_hydrogen_session_deployment: Deployment) -> Iterator[Deployment]:
    """CNX, Node and Task deployed and wired (`.token`, `.node`, `.task`, `.owner`),
    isolated per test: every change is reverted when the test ends."""
    chain = _hydrogen_session_deployment.chain
    undo = chain.isolate()
    try:
        yield _hydrogen_session_deployment
    finally:
        undo()


def _node_spec(request: pytest.FixtureRequest) -> list[Any]:
    marker = request.node.get_closest_marker("hydrogen_nodes")
    if marker is None:
        return list(DEFAULT_NODES)
    args = list(marker.args)
    if len(args) == 1 and isinstance(args[0], int):
        return ["honest"] * args[0]
    if args and isinstance(args[0], int):
        count, behaviours = args[0], [str(a) for a in args[1:]]
        if len(behaviours) > count:
            raise pytest.UsageError(f"hydrogen_nodes: {len(behaviours)} behaviours for {count} nodes")
        return behaviours + ["honest"] * (count - len(behaviours))
    return args


@pytest.fixture
def hydrogen_network(request: pytest.FixtureRequest, _hydrogen_session_deployment: Deployment) -> Iterator[Network]:
    """A simulated network: the contracts, an in-process Relay and joined nodes.

    Nodes default to 3 honest ones; choose others with a marker::

        @pytest.mark.hydrogen_nodes("honest", "honest", "cheater")
        @pytest.mark.hydrogen_nodes(5)              # five honest nodes
        @pytest.mark.hydrogen_nodes(4, "jitter")    # one jitter, three honest

    Drive it with `step()`, `run_until(...)`, `settle()`, `advance(seconds)`; read
    `timeline` and `ledger`. Everything is reverted when the test ends.
    """
    from harness.network import Network

    chain = _hydrogen_session_deployment.chain
    undo = chain.isolate()
    try:
        yield Network(seed=chain.seed, nodes=_node_spec(request), chain=chain, deployment=_hydrogen_session_deployment)
    finally:
        undo()


@pytest.fixture
def hydrogen_app(hydrogen_network: Network) -> Application:
    """An application client on `hydrogen_network`, its wallet holding 1,000 CNX and
    10 ETH; `run(args)` does the whole workflow and returns a `TaskResult`."""
    return hydrogen_network.add_app()


@pytest.fixture
def hydrogen_nodes(hydrogen_network: Network) -> list[SimulatedNode]:
    """The simulated nodes of `hydrogen_network`, in joining order."""
    return hydrogen_network.nodes


@pytest.fixture
def hydrogen_relay(hydrogen_network: Network) -> RelayService:
    """The in-process fake Relay of `hydrogen_network` (its service core)."""
    return hydrogen_network.relay


@pytest.fixture
def hydrogen_expect_revert() -> Callable[[str | None], Any]:
    """`expect_revert(reason)` as a fixture: `with hydrogen_expect_revert("Not enough nodes"): ...`."""
    return expect_revert


@contextlib.contextmanager
def expect_revert(reason: str | None) -> Iterator[list[RevertError]]:
    """Assert that the block reverts with exactly `reason` (None: no reason)::

        with expect_revert("Not enough nodes"):
            app.run(args)
    """
    caught: list[RevertError] = []
    try:
        yield caught
    except RevertError as exc:
        if exc.reason != reason:
            raise AssertionError(f"expected revert {reason!r}, got {exc.reason!r} ({exc})") from exc
        caught.append(exc)
        return
    raise AssertionError(f"expected revert {reason!r}, but nothing reverted")
