"""pytest plugin of hydrogen-harness, registered through the `pytest11` entry point.

Installing the package is all a user needs: these fixtures and options appear in
`pytest --fixtures` and `pytest --help`. Each test runs inside a chain snapshot
taken after deployment, so tests never see each other's transactions.

Two ways to run the network: `hydrogen_sandbox` serves it live on 127.0.0.1 for
the user's own application (any client library, wall-clock time, nodes acting by
themselves); `hydrogen_network` steps it deterministically in process. When a
test using either fails, its timeline and ledger are added to the report.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hydrogen_harness.sandbox.pool import DEFAULT_NODES
from hydrogen_harness.wallet.fixtures import hydrogen_browser, hydrogen_dapp_page, hydrogen_open_dapp, hydrogen_wallet

# pytest imports this module in every session of every project that installed us, so
# web3, eth-tester, vyper and the rest load only once one of our fixtures runs.
if TYPE_CHECKING:
    from hydrogen_harness.chain.chain import Chain
    from hydrogen_harness.chain.contracts import Deployment
    from hydrogen_harness.protocol.reverts import RevertError
    from hydrogen_harness.fakes.node import SimulatedNode
    from hydrogen_harness.fakes.relay import RelayService
    from hydrogen_harness.client.app import Application
    from hydrogen_harness.sim.network import Network
    from hydrogen_harness.sandbox.core import Sandbox

__all__ = ["expect_revert", "hydrogen_browser", "hydrogen_dapp_page", "hydrogen_open_dapp", "hydrogen_wallet"]

_sandbox_log = logging.getLogger("hydrogen.sandbox")


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
        help="the chain under hydrogen_chain, hydrogen_contracts, hydrogen_network and hydrogen_app: "
        "in-memory (eth-tester over py-evm, default) or revm (the same results, several times faster, "
        "no JSON-RPC behind chain.w3); hydrogen_sandbox always serves eth-tester",
    )
    group.addoption(
        "--hydrogen-rpc-key",
        default=None,
        help="private key that pays for deployment on --hydrogen-rpc-url (default: anvil's first account)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hydrogen_nodes(count, *behaviours): the simulated nodes of hydrogen_network or hydrogen_sandbox "
        "(hydrogen_nodes(0): none, bring your own)",
    )




@pytest.fixture(scope="session")
def hydrogen_chain(request: pytest.FixtureRequest) -> Chain:
    """The chain for this test session (per xdist worker): in-memory, seeded by
    `--hydrogen-seed` (eth-tester, or revm with `--hydrogen-backend revm`), or the
    node given by `--hydrogen-rpc-url`."""
    from hydrogen_harness.chain.chain import Chain

    seed = request.config.getoption("--hydrogen-seed")
    url = request.config.getoption("--hydrogen-rpc-url")
    if url:
        from hydrogen_harness.sandbox.anvil import ANVIL_FIRST_KEY

        key = request.config.getoption("--hydrogen-rpc-key") or ANVIL_FIRST_KEY
        return Chain.from_rpc(url, key, seed=seed)
    if request.config.getoption("--hydrogen-backend") == "revm":
        return Chain.revm(seed=seed)
    return Chain.in_memory(seed=seed)


@pytest.fixture(scope="session")
def _hydrogen_session_deployment(hydrogen_chain: Chain) -> Deployment:
    from hydrogen_harness.chain.contracts import deploy

    return deploy(hydrogen_chain)


@pytest.fixture
def hydrogen_contracts(_hydrogen_session_deployment: Deployment) -> Iterator[Deployment]:
    """CNX, Node and Task deployed and wired (`.token`, `.node`, `.task`, `.owner`),
    isolated per test: every change is reverted when the test ends."""
    with _hydrogen_session_deployment.chain.isolation():
        yield _hydrogen_session_deployment


def _node_spec(request: pytest.FixtureRequest) -> list[Any]:
    return _node_spec_of(request.node)


def _node_spec_of(item: pytest.Item) -> list[Any]:
    marker = item.get_closest_marker("hydrogen_nodes")
    if marker is None:
        return list(DEFAULT_NODES)
    args = list(marker.args)
    if args and isinstance(args[0], int) and args[0] < 0:
        raise pytest.UsageError(f"hydrogen_nodes: a node count must not be negative, got {args[0]}")
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
    from hydrogen_harness.sim.network import Network

    chain = _hydrogen_session_deployment.chain
    with chain.isolation():
        yield Network(seed=chain.seed, nodes=_node_spec(request), chain=chain, deployment=_hydrogen_session_deployment)


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


@pytest.fixture(scope="session")
def _hydrogen_sandbox_session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The session's live network (one per xdist worker), its node pool sized from the
    `hydrogen_nodes` markers of the collected tests that use `hydrogen_sandbox`."""
    from hydrogen_harness.sandbox.core import Sandbox, SandboxError, SandboxOptions
    from hydrogen_harness.sandbox.pool import pool_for

    specs = []
    for item in request.session.items:
        if "hydrogen_sandbox" in getattr(item, "fixturenames", ()):
            try:
                specs.append(_node_spec_of(item))
            except pytest.UsageError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
    try:
        pool = pool_for(specs)
    except ValueError as exc:
        raise pytest.UsageError(f"hydrogen_nodes: {exc}") from None
    config = request.config
    url = config.getoption("--hydrogen-rpc-url")
    options = SandboxOptions.for_tests(
        Path(tmp_path_factory.mktemp("hydrogen-sandbox")),
        pool,
        seed=config.getoption("--hydrogen-seed"),
        rpc_url=url,
        rpc_key=config.getoption("--hydrogen-rpc-key"),
    )
    sandbox = Sandbox(options, log=_sandbox_log.info)
    try:
        sandbox.start()
    except SandboxError as exc:
        pytest.fail(f"hydrogen_sandbox could not start: {exc}", pytrace=False)
    try:
        sandbox.use_nodes(DEFAULT_NODES)  # the session's base state: the default three available
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def hydrogen_sandbox(request: pytest.FixtureRequest, _hydrogen_sandbox_session: Sandbox) -> Iterator[Sandbox]:
    """The Hydrogen Network served live on 127.0.0.1 to test YOUR application unchanged
    (web3.py, ethers, httpx, any language), simulated nodes acting on wall-clock time:
    `rpc_url`, `ws_url`, `relay_url`, `chain_id`, `addresses` {token, node, task},
    `abi(name)`, `new_wallet(cnx=, eth=)` -> .address/.key, `owner`, `nodes`,
    `faults.fail_next(count, method, path_or_regex, status=503 | delay=s | drop=True)`,
    `advance(seconds)`, `timeline`, `ledger`; choose nodes with
    @pytest.mark.hydrogen_nodes("honest", "cheater", "honest") or hydrogen_nodes(0)
    (none: bring your own). Chain and Relay are reverted after each test.

    Details: `nodes` are this test's simulated nodes (`.address`, `.behaviour`,
    `.status()`), in the marker's order; the others are paused, so `createTask`
    never selects them. `owner` (the contracts' owner) may call updateTimeout and
    the other owner functions. Faults are injected at the servers, so every client
    sees them; `server="rpc"` (with `rpc_method=`) breaks the JSON-RPC endpoint of
    the in-memory chain. The chain mines an empty block every second while idle,
    so time passes as on a real chain. With `--hydrogen-rpc-url` the contracts are
    deployed on that node (e.g. anvil) and the Relay and nodes run around it.
    `wait_until_idle()` waits for the nodes' last actions before final balances are
    read. When a test fails, its timeline and ledger are added to the report.
    """
    with _hydrogen_sandbox_session.isolated(_node_spec(request)):
        yield _hydrogen_sandbox_session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test using the network gets its timeline and ledger in the report."""
    report = yield
    if report.failed and call.when == "call":
        try:
            report.sections.extend(_network_sections(item))
        except Exception as exc:  # never hide the test's own failure behind ours
            report.sections.append(("hydrogen network", f"(could not read the timeline and ledger: {exc!r})"))
        try:
            from hydrogen_harness.wallet.fixtures import failure_sections

            report.sections.extend(failure_sections(item))
        except Exception as exc:  # noqa: BLE001
            report.sections.append(("hydrogen wallet", f"(could not take the screenshot or the request log: {exc!r})"))
    return report


def _network_sections(item: pytest.Item) -> list[tuple[str, str]]:
    from hydrogen_harness.sim.report import ledger_text, timeline_text

    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    sandbox = funcargs.get("hydrogen_sandbox")
    if sandbox is not None:
        nodes = ", ".join(f"{node.name} {node.behaviour}" for node in sandbox.nodes) or "none (bring your own)"
        return [
            ("hydrogen_sandbox timeline", f"this test's nodes: {nodes}\n{timeline_text(sandbox.timeline)}"),
            ("hydrogen_sandbox ledger", ledger_text(sandbox.ledger, sandbox.names)),
        ]
    network = funcargs.get("hydrogen_network")
    if network is not None:
        network.ledger.sync()
        names = {node.address: node.name for node in network.nodes}
        names.update({app.account.address: app.name for app in network.apps})
        return [
            ("hydrogen_network timeline", timeline_text(network.timeline)),
            ("hydrogen_network ledger", ledger_text(network.ledger, names)),
        ]
    return []


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
    from hydrogen_harness.protocol.reverts import RevertError

    caught: list[RevertError] = []
    try:
        yield caught
    except RevertError as exc:
        if exc.reason != reason:
            raise AssertionError(f"expected revert {reason!r}, got {exc.reason!r} ({exc})") from exc
        caught.append(exc)
        return
    raise AssertionError(f"expected revert {reason!r}, but nothing reverted")
