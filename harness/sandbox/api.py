"""What a test (or any tool) reads and drives on a running sandbox.

The `hydrogen_sandbox` fixture hands tests the `Sandbox` itself, the class the
`hydrogen-harness sandbox` command runs; this mixin is its test-facing half:
where to connect, the contracts and their ABIs, funded wallets, the simulated
nodes (and which of them a test gets), chain time, snapshots that also take the
Relay and the nodes back, and the timeline and ledger of the current test.
Faults live in `sandbox_faults` (`Sandbox.faults`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from web3.types import RPCEndpoint

from hydrogen_harness.chain.abis import abi as packaged_abi
from hydrogen_harness.chain.chain import ETH
from hydrogen_harness.chain.ledger import Ledger
from hydrogen_harness.sim.network import TimelineEntry
from hydrogen_harness.protocol.constants import CNX, NodeStatus
from hydrogen_harness.sandbox.pool import assign
from hydrogen_harness.sandbox.deploy import sandbox_account
from hydrogen_harness.sandbox.state import SandboxInfo

if TYPE_CHECKING:
    from hydrogen_harness.fakes.node import SimulatedNode
    from hydrogen_harness.fakes.relay import RelayService
    from hydrogen_harness.chain.chain import Chain
    from hydrogen_harness.chain.contracts import Deployment
    from hydrogen_harness.jsonrpc.dev import DevClock
    from hydrogen_harness.jsonrpc.methods import EthRpc
    from hydrogen_harness.sandbox.faults import ServerFaults
    from hydrogen_harness.sandbox.nodes import NodeLoop
    from hydrogen_harness.sandbox.timeline import Timeline

__all__ = ["DevMethodError", "SandboxApi", "Wallet"]


class DevMethodError(RuntimeError):
    """A dev method (evm_snapshot, evm_revert, evm_increaseTime...) failed on the chain."""


@dataclass(frozen=True)
class Wallet:
    """A funded account: `address` (checksummed) and `key` (0x + 64 hex digits)."""

    address: ChecksumAddress
    key: str

    @classmethod
    def of(cls, account: LocalAccount) -> Wallet:
        return cls(to_checksum_address(account.address), "0x" + bytes(account.key).hex())

    @property
    def account(self) -> LocalAccount:
        """The eth-account `LocalAccount`, to sign with."""
        return Account.from_key(self.key)


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


class SandboxApi:
    """The test-facing half of `Sandbox` (see the module docstring)."""

    # Set by Sandbox.
    info: SandboxInfo
    chain: Chain | None
    faults: ServerFaults
    options: Any
    _rpc: EthRpc | None
    _relay: RelayService | None
    _loop: NodeLoop | None
    _clock: DevClock | None
    _deployment: Deployment | None
    _timeline: Timeline
    _names: dict[str, str]
    _active: list[SimulatedNode] | None
    _wallets: int
    _test_block: int
    _snapshots: list[str]

    # ------------------------------------------------------------ where to connect

    def _running(self) -> SandboxInfo:
        if not self.info:
            raise RuntimeError("the sandbox is not running: call start() first")
        return self.info

    @property
    def rpc_url(self) -> str:
        """The chain's JSON-RPC URL (http://127.0.0.1:PORT)."""
        return self._running()["rpc_url"]

    @property
    def ws_url(self) -> str:
        """The same endpoint over WebSocket (ws://127.0.0.1:PORT, the same port)."""
        return "ws://" + self.rpc_url.split("://", 1)[1]

    @property
    def relay_url(self) -> str:
        """The Relay's base URL (its API is under /v1)."""
        return self._running()["relay_url"]

    @property
    def dapp_url(self) -> str:
        """The reference DApp (harness/dapp/static), served on the Relay's port."""
        return self.relay_url + "/dapp/"

    @property
    def chain_id(self) -> int:
        return self._running()["chain_id"]

    @property
    def addresses(self) -> dict[str, ChecksumAddress]:
        """The contracts: {"token": CNX, "node": Node registry, "task": Task}, checksummed."""
        return {name: to_checksum_address(address) for name, address in self._running()["contracts"].items()}

    def abi(self, name: str) -> list[dict[str, Any]]:
        """The ABI of "token", "node" or "task" (the JSON shipped in harness/chain/abi/)."""
        return packaged_abi(name)

    # ------------------------------------------------------------ accounts

    def _deployed(self) -> Deployment:
        if self._deployment is None or self.chain is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return self._deployment

    @property
    def owner(self) -> Wallet:
        """The contracts' owner (holds the CNX supply; may call updateTimeout and friends)."""
        owner = self._deployed().owner
        if owner is None:
            raise RuntimeError("this sandbox reuses contracts whose owner key it does not hold")
        return Wallet.of(owner)

    def new_wallet(self, cnx: int = 1_000 * CNX, eth: int = 10 * ETH) -> Wallet:
        """A new account holding `cnx` CNX units and `eth` wei, sent by the owner.

        Wallets are numbered within a test (wallet1, wallet2, ...; the same keys in
        every test) and exist only until the test's snapshot is reverted."""
        _whole(cnx, "cnx", 0)
        _whole(eth, "eth", 0)
        deployment = self._deployed()
        self._wallets += 1
        name = f"wallet{self._wallets}"
        account = sandbox_account(self.options.seed, name)
        if eth:
            deployment.chain.send_eth(account.address, eth)
        if cnx:
            deployment.fund(account.address, cnx=cnx)
        self._names[account.address] = name
        return Wallet.of(account)

    @property
    def names(self) -> dict[str, str]:
        """Readable names of the addresses in the timeline and the ledger."""
        return dict(self._names)

    # ------------------------------------------------------------ nodes

    @property
    def all_nodes(self) -> list[SimulatedNode]:
        """Every simulated node the sandbox runs (the fixture's pool)."""
        return list(self._loop.nodes) if self._loop is not None else []

    @property
    def nodes(self) -> list[SimulatedNode]:
        """The simulated nodes available now (for a test: those of its `hydrogen_nodes`
        marker, in its order); each has `.address`, `.behaviour` and `.status()`."""
        return list(self._active) if self._active is not None else self.all_nodes

    def use_nodes(self, behaviours: Sequence[str]) -> list[SimulatedNode]:
        """Make exactly these simulated nodes available (resume them) and pause the
        others, so `createTask` selects only among them; returns them in order. An
        empty list pauses every node: bring your own."""
        pool = self.all_nodes
        chosen = [pool[i] for i in assign([str(n.behaviour) for n in pool], behaviours)]
        wanted = {node.address for node in chosen}
        registry = self._deployed().node
        changes: list[Callable[[], object]] = []
        with self._quiet_nodes():
            for node in pool:
                status = node.status()
                if node.address in wanted and status is NodeStatus.PAUSED:
                    changes.append(functools.partial(registry.resume, node.account))
                elif node.address not in wanted and status is NodeStatus.AVAILABLE:
                    changes.append(functools.partial(registry.pause, node.account))
                elif node.address in wanted and status is not NodeStatus.AVAILABLE:
                    raise RuntimeError(f"{node.name} ({node.behaviour}) is {status.name}: it cannot take tasks")
            # Each node sends its own transaction, all at once: they share a block or two.
            with ThreadPoolExecutor(max_workers=max(1, len(changes))) as senders:
                for done in [senders.submit(change) for change in changes]:
                    done.result()
        self._active = chosen
        return list(chosen)

    def _quiet_nodes(self) -> contextlib.AbstractContextManager[None]:
        return self._loop.held() if self._loop is not None else contextlib.nullcontext()

    def _wake_nodes(self) -> None:
        if self._loop is not None:
            self._loop.wake()

    # ------------------------------------------------------------ time

    def _dev(self, method: str, params: list[Any]) -> Any:
        """A dev method on the chain: through the in-memory JSON-RPC object (so its hooks
        run and its transaction pool is kept right), or over JSON-RPC (anvil, a node)."""
        if self._rpc is not None:
            return self._rpc.call(method, params)
        if self.chain is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        answer = self.chain.w3.provider.make_request(RPCEndpoint(method), params)
        if answer.get("error"):
            raise DevMethodError(f"{method}{params} failed on {self.rpc_url}: {answer['error']}")
        return answer.get("result")

    def advance(self, seconds: int) -> int:
        """Move chain time `seconds` forward and mine a block; returns its timestamp.
        For deadlines: a task created before is past its timeout after advance(timeout + 1)."""
        _whole(seconds, "seconds", 1)
        self._dev("evm_increaseTime", [seconds])
        self._dev("evm_mine", [])
        self._timeline.record("clock", f"advance {seconds} s")
        self._wake_nodes()
        assert self.chain is not None
        return self.chain.now()

    # ------------------------------------------------------------ isolation

    def snapshot(self) -> str:
        """Snapshot the chain (evm_snapshot); `revert(id)` comes back to it, once."""
        snapshot_id = str(self._dev("evm_snapshot", []))
        self._snapshots.append(snapshot_id)
        return snapshot_id

    def revert(self, snapshot_id: str) -> None:
        """Take the chain back to `snapshot_id` (used up, as on anvil), and the Relay
        and the nodes with it: the Relay forgets every task, nodes forget theirs."""
        if snapshot_id not in self._snapshots:
            raise DevMethodError(f"evm_revert({snapshot_id!r}): no such snapshot (each is used up by a revert)")
        with self._quiet_nodes():
            # The chain's clock goes back with it (evm_revert restores it, as anvil's does).
            if self._dev("evm_revert", [snapshot_id]) is not True:
                raise DevMethodError(f"evm_revert({snapshot_id!r}) failed: no such snapshot on the chain")
            # As on anvil, a revert uses up its snapshot and every later one.
            del self._snapshots[self._snapshots.index(snapshot_id):]
            self._reset_actors()

    def _reset_actors(self) -> None:
        if self._relay is not None:
            self._relay.reset()
        if self._loop is not None:
            self._loop.reset()

    @contextlib.contextmanager
    def isolated(self, nodes: Sequence[str]) -> Iterator[None]:
        """One test: start from the session's state with only `nodes` available, a fresh
        timeline, ledger and wallet numbering; afterwards disarm faults and revert all."""
        with self._quiet_nodes():
            self._reset_actors()  # another user of the chain (a shared anvil) may have moved it
        snapshot_id = self.snapshot()
        before = self._active
        try:
            self.use_nodes(nodes)
            self._wallets = 0
            assert self.chain is not None
            self._test_block = self.chain.block_number
            self._timeline.clear()
            yield
        finally:
            self.faults.clear()
            self._active = before
            self.revert(snapshot_id)

    # ------------------------------------------------------------ what happened

    @property
    def timeline(self) -> list[TimelineEntry]:
        """Everything the network did in this test, in order: Task events, node actions,
        Relay requests (with their answers), injected faults, clock moves."""
        return self._timeline.entries

    @property
    def ledger(self) -> Ledger:
        """Every CNX movement of this test (fees, refunds, escrow, stakes), read from the chain now."""
        ledger = Ledger(self._deployed(), from_block=self._test_block + 1)
        ledger.sync()
        return ledger

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no simulated node has work it can still do (e.g. the result node's
        report after the app got its images), to read final balances; False after
        `timeout` s. Call it once your app has its outcome: a task the nodes have
        not seen yet is no work to them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._quiet_nodes():  # between ticks: the nodes' task lists hold still
                busy = any(n.active() and not n.crashed and not n.behaviour.offline for n in self.all_nodes)
            if not busy:
                return True
            time.sleep(0.02)
        return False
