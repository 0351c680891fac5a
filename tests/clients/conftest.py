"""Fixtures of the client-fidelity tests.

- `pair`: our in-memory endpoint and a fresh anvil side by side, with the same
  contracts at the same addresses, the same funded user and three joined nodes on
  both, so the same signed bytes can be sent to each (anvil runs with our chain id).
  Each test runs between an evm_snapshot and an evm_revert on both chains.
- `in_memory_sandbox` / `anvil_sandbox`: the whole sandbox (chain, contracts, Relay,
  simulated nodes) in this process, for real client libraries to drive.
- `node_app`: the ethers v6 application in js/, run with Node.js.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from hydrogen_harness.fakes.relay import serve_relay
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.jsonrpc.dev import DevClock
from hydrogen_harness.jsonrpc.methods import EthRpc
from hydrogen_harness.jsonrpc.server import create_rpc_app
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions
from hydrogen_harness.sandbox.anvil import ANVIL_FIRST_KEY, ANVIL_VERSION, AnvilProcess, find_anvil, start_anvil

JS_DIR = Path(__file__).resolve().parent / "js"
ANVIL_MISSING = (
    "anvil binary not found: install it with `npm install --ignore-scripts --prefix .cache/anvil "
    f"@foundry-rs/anvil-linux-amd64@{ANVIL_VERSION}` (.ci/run does), or set HYDROGEN_ANVIL"
)
STAKE = 400 * CNX
STARTUP_TIMEOUT = 30.0  # anvil and the sandbox start in a second or two; a loaded CI machine is slower


def require_anvil() -> Path:
    binary = find_anvil()
    if binary is None:
        pytest.skip(ANVIL_MISSING)
    return binary


# ---------------------------------------------------------------- one JSON-RPC endpoint


@dataclass
class Endpoint:
    """One node's JSON-RPC endpoint: raw requests, answers returned whole."""

    name: str
    url: str
    chain: Chain
    http: httpx.Client

    def answer(self, method: str, *params: Any) -> dict[str, Any]:
        """The whole JSON-RPC answer ({"result": ...} or {"error": ...})."""
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer: dict[str, Any] = self.http.post(self.url, json=payload).json()
        return answer

    def result(self, method: str, *params: Any) -> Any:
        answer = self.answer(method, *params)
        if "error" in answer:
            raise AssertionError(f"{self.name}: {method}{list(params)!r:.200} -> {answer['error']}")
        return answer["result"]

    def raw(self, body: bytes) -> Any:
        """POST a body as is (malformed JSON, batches)."""
        return self.http.post(self.url, content=body, headers={"content-type": "application/json"}).json()


@dataclass
class Pair:
    """Our endpoint and anvil, set up identically."""

    ours: Endpoint
    anvil: Endpoint
    deployment: Deployment  # ours; the addresses are the same on anvil
    anvil_deployment: Deployment
    user: LocalAccount
    chain_id: int

    @property
    def endpoints(self) -> tuple[Endpoint, Endpoint]:
        return self.ours, self.anvil

    def both(self, method: str, *params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.ours.answer(method, *params), self.anvil.answer(method, *params)

    def results(self, method: str, *params: Any) -> tuple[Any, Any]:
        return self.ours.result(method, *params), self.anvil.result(method, *params)

    def nonce(self, account: LocalAccount | None = None) -> int:
        address = (account or self.user).address
        ours, anvil = self.results("eth_getTransactionCount", address, "latest")
        assert ours == anvil, f"the user's nonce differs: ours {ours}, anvil {anvil}"
        return int(ours, 16)

    def sign(
        self,
        *,
        to: str | None,
        data: str = "0x",
        nonce: int,
        gas: int = 200_000,
        fee: int = 10**9,
        tip: int | None = None,
        legacy: bool = False,
        value: int = 0,
        account: LocalAccount | None = None,
    ) -> str:
        """A signed transaction, the same bytes for both chains."""
        tx: dict[str, Any] = {"data": data, "gas": gas, "nonce": nonce, "chainId": self.chain_id, "value": value}
        if to is not None:
            tx["to"] = to
        if legacy:
            tx["gasPrice"] = fee
        else:
            tx.update(maxFeePerGas=fee, maxPriorityFeePerGas=fee if tip is None else tip)
        return "0x" + bytes((account or self.user).sign_transaction(tx).raw_transaction).hex()


def _set_up(chain: Chain, owner: LocalAccount, user: LocalAccount, nodes: list[LocalAccount]) -> Deployment:
    """The same history on both chains: the same transactions from the same accounts, so
    contract addresses, balances and block numbers agree."""
    chain.send_eth(owner.address, 10**21)
    chain.send_eth(user.address, 10**21)
    deployment = deploy(chain, owner=owner)
    deployment.fund(user.address, cnx=10_000 * CNX)
    for node in nodes:
        chain.send_eth(node.address, 10**19)
        deployment.fund(node.address, cnx=STAKE)
        deployment.token.approve(node, deployment.node.address, STAKE)
        deployment.node.join(node)
    return deployment


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    binary = require_anvil()
    clock = DevClock(offset=-120)  # set-up blocks in the recent past, as the sandbox stamps them
    chain = Chain.in_memory(seed=11, wall_clock=clock.now)
    owner, user = (Account.from_key(keccak(text=f"hydrogen-harness:clients:{n}")) for n in ("owner", "user"))
    nodes = [Account.from_key(keccak(text=f"hydrogen-harness:clients:node{i}")) for i in range(3)]
    deployment = _set_up(chain, owner, user, nodes)
    clock.advance(120)
    rpc = EthRpc(chain, lock=threading.RLock(), clock=clock)
    # anvil as the sandbox starts it, plus our chain id, so a transaction signed once is
    # valid on both chains.
    anvil = start_anvil(binary, tmp_path_factory.mktemp("anvil") / "anvil.log", startup_timeout=STARTUP_TIMEOUT, chain_id=chain.chain_id)
    try:
        anvil_chain = Chain.from_rpc(anvil.url, ANVIL_FIRST_KEY)
        anvil_deployment = _set_up(anvil_chain, owner, user, nodes)
        assert anvil_deployment.addresses == deployment.addresses
        with serve_relay(create_rpc_app(rpc)) as served, httpx.Client(timeout=30) as http:
            ours = Endpoint("ours", served.url, chain, http)
            theirs = Endpoint("anvil", anvil.url, anvil_chain, http)
            pair = Pair(ours, theirs, deployment, anvil_deployment, user, chain.chain_id)
            assert int(ours.result("eth_blockNumber"), 16) == int(theirs.result("eth_blockNumber"), 16)
            yield pair
    finally:
        rpc.close()
        anvil.stop()


@pytest.fixture
def pair(chains: Pair) -> Iterator[Pair]:
    """`chains`, put back as it was after the test (state, pool, mining mode)."""
    snapshots = [endpoint.result("evm_snapshot") for endpoint in chains.endpoints]
    yield chains
    # anvil's evm_revert keeps its pool (ours empties it): a test that left transactions
    # pending would hand them to the next one.
    chains.anvil.result("anvil_dropAllTransactions")
    for endpoint, snapshot in zip(chains.endpoints, snapshots, strict=True):
        endpoint.result("evm_setAutomine", True)
        assert endpoint.result("evm_revert", snapshot) is True
    assert chains.ours.result("txpool_status") == chains.anvil.result("txpool_status") == {"pending": "0x0", "queued": "0x0"}


# ---------------------------------------------------------------- sandboxes, in process


def start_sandbox(state: Path, *, anvil: bool, nodes: int) -> Sandbox:
    """`hydrogen-harness sandbox [--anvil] --nodes N` as a developer starts it (the command's
    mining and clock settings), on free ports, in a fresh state folder, not persisted."""
    options = SandboxOptions(
        state=state, rpc_port=0, relay_port=0, anvil=anvil, behaviours=["honest"] * nodes, reset=True, persist=False
    )
    sandbox = Sandbox(options, log=lambda line: None)
    sandbox.start()
    return sandbox


@pytest.fixture(scope="module")
def in_memory_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    # Nine nodes: three tasks in flight at once need three free nodes each.
    sandbox = start_sandbox(tmp_path_factory.mktemp("sandbox"), anvil=False, nodes=9)
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def fresh_sandbox(tmp_path: Path) -> Iterator[Callable[[bool], Sandbox]]:
    """Start a sandbox of nine nodes for this test alone (`fresh_sandbox(anvil)`), so that a
    run that fails leaves nothing (busy nodes, stuck tasks) to the next; closed after it."""
    started: list[Sandbox] = []

    def start(anvil: bool) -> Sandbox:
        if anvil:
            require_anvil()
        sandbox = start_sandbox(tmp_path / f"sandbox-{len(started)}", anvil=anvil, nodes=9)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.close()


@pytest.fixture(scope="module")
def anvil_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    require_anvil()
    sandbox = start_sandbox(tmp_path_factory.mktemp("sandbox-anvil"), anvil=True, nodes=9)
    try:
        yield sandbox
    finally:
        sandbox.close()


# ---------------------------------------------------------------- the Node.js application


@dataclass
class NodeApp:
    """js/app.mjs: `run(config)` feeds it the config as JSON and returns its JSON result."""

    node: str

    def run(self, config: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            done = subprocess.run(
                [self.node, str(JS_DIR / "app.mjs")],
                input=json.dumps(config),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=JS_DIR,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the ethers app did not finish within {timeout} s:\n{exc.stderr!r:.3000}") from None
        lines = done.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(f"the ethers app printed no result (exit {done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        if "fatal" in result:
            raise AssertionError(f"the ethers app failed: {result['fatal']}\n{done.stderr[-3000:]}")
        result["log"] = done.stderr[-3000:]
        return result


@pytest.fixture(scope="session")
def node_app() -> NodeApp:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not found: the ethers tests need `node` (v18+) on PATH")
    if not (JS_DIR / "node_modules" / "ethers" / "package.json").is_file():
        pytest.skip(
            "ethers is not installed: run `npm ci --ignore-scripts --no-audit --no-fund --prefix tests/clients/js` "
            "(.ci/run does)"
        )
    return NodeApp(node)


def client_tasks(default: int) -> int:
    """Tasks per client run: HYDROGEN_CLIENT_TASKS (e.g. 20, the full run) or `default`."""
    raw = os.environ.get("HYDROGEN_CLIENT_TASKS")
    return int(raw) if raw else default
