"""`hydrogen-harness sandbox`: the Hydrogen Network on 127.0.0.1, for apps in any language.

One process serves what an H-net application talks to, over real sockets:
- a chain: the in-memory chain behind a JSON-RPC endpoint (`hydrogen_harness.jsonrpc.server`),
  or a node given with `--rpc-url`, or an anvil started with `--anvil`;
- the CNX, Node and Task contracts, deployed and wired, and a funded application
  wallet (100 ETH, 10,000 CNX);
- the Relay (`hydrogen_harness.fakes.relay`) under uvicorn, its database in the state folder;
- N simulated nodes acting in a background thread (`sandbox_nodes.NodeLoop`),
  woken by every new block and every Relay upload;
- faults injected at both servers (`sandbox_faults`), a timeline and a ledger.

The same class is the `hydrogen_sandbox` pytest fixture's object (`SandboxApi`
is its test-facing half: URLs, ABIs, wallets, nodes, time, snapshots).

It writes everything a client needs to `<state>/sandbox.json`, prints a summary,
logs each task's progress from the Task events, and stops cleanly on SIGINT or
SIGTERM. What survives a restart is described in `persistence_note` (and printed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from eth_account.signers.local import LocalAccount

from hydrogen_harness.fakes.behaviour import Behaviour
from hydrogen_harness.fakes.diffusion import DeterministicGenerator
from hydrogen_harness.fakes.node import SimulatedNode
from hydrogen_harness.fakes.relay import (
    ChainSource,
    ContractChainSource,
    RelayDatabaseDamaged,
    RelayDatabaseError,
    RelayService,
    SqliteStorage,
    create_app,
    serve_relay,
)
from hydrogen_harness.chain.chain import ETH, Chain
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.dapp import with_dapp
from hydrogen_harness.client.relay import NO_RETRY, RelayClient
from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.jsonrpc.dev import DevClock
from hydrogen_harness.jsonrpc.feed import ChainFeed
from hydrogen_harness.jsonrpc.methods import EthRpc
from hydrogen_harness.jsonrpc.pool import MAX_LEAD, Miner
from hydrogen_harness.sandbox.node_store import NodeTaskFile
from hydrogen_harness.jsonrpc.server import create_rpc_app
from hydrogen_harness.sandbox.api import SandboxApi, Wallet
from hydrogen_harness.sandbox.dashboard import Dashboard
from hydrogen_harness.sandbox.anvil import (
    ANVIL_FIRST_KEY,
    ANVIL_VERSION,
    AnvilProcess,
    find_anvil,
    start_anvil,
)
from hydrogen_harness.sandbox.journal import (
    ChainJournal,
    JournalCorrupt,
    JournalMismatch,
    LockedTesterBackend,
    in_memory_chain,
)
from hydrogen_harness.sandbox.faults import RequestSeen, Server, ServerFaults
from hydrogen_harness.sandbox.idle import IdleMiner
from hydrogen_harness.sandbox.nodes import NodeLoop, StaleTask
from hydrogen_harness.sandbox.deploy import (
    APP_CNX,
    DeploymentRecord,
    code_version,
    deploy_or_reuse,
    ensure_app,
    ensure_nodes,
    live_tasks,
    retire_nodes,
    sandbox_account,
)
from hydrogen_harness.sandbox.state import SandboxInfo, SandboxState, StateInUse
from hydrogen_harness.sandbox.timeline import ACTOR_HEADER, Timeline

__all__ = ["SandboxError", "SandboxOptions", "Sandbox", "Wallet", "run_sandbox"]

_SETUP_HEADROOM = 120  # seconds in the past the in-memory chain's set-up blocks start at
_NODE_STORES = "nodes"  # the simulated nodes' databases, in the state folder (hydrogen_harness.sandbox.node_store)


class SandboxError(RuntimeError):
    """The sandbox cannot start; the message says why and what to do."""


@dataclass
class SandboxOptions:
    state: Path = Path(".sandbox")
    host: str = "127.0.0.1"
    rpc_port: int = 8545
    relay_port: int = 8080
    rpc_url: str | None = None
    rpc_key: str = ANVIL_FIRST_KEY
    anvil: bool = False
    behaviours: list[str] = field(default_factory=lambda: ["honest"] * 6)
    seed: int = 0
    reset: bool = False
    verbose: bool = False
    tick: float = 0.25
    # Mining of the in-memory chain (anvil's modes): each transaction mined as it
    # comes (automine) and/or a block every `block_time` seconds (None: never).
    # Both together, the default, also lets time pass on an idle chain.
    automine: bool = True
    block_time: float | None = 1.0
    # Journal the in-memory chain to the state folder, to rebuild it on the next
    # start (the command). A test session's sandbox lives once: it does without.
    persist: bool = True
    # Seconds the in-memory chain's head may run ahead of the clock before blocks
    # wait for it (None: the miner's default, 5). Each block is a second after its
    # parent, so this is how many blocks a burst gets at full speed.
    max_lead: int | None = None
    # On a chain served by someone else (anvil, --rpc-url): mine an empty block
    # (evm_mine) after `block_time` seconds without one, so time passes while idle.
    mine_idle: bool | None = None  # None: on the anvil the sandbox starts, not on --rpc-url
    # The live dashboard's port (0: any free port; None: no dashboard).
    dashboard_port: int | None = None

    @property
    def mode(self) -> str:
        return "anvil" if self.anvil else "rpc" if self.rpc_url else "in-memory"

    @property
    def idle_mining(self) -> bool:
        """Whether to mine empty blocks while idle on a chain served by someone else: by
        default on the anvil the sandbox starts itself (anvil mines only on demand, and an
        ethers app's tx.wait() may need one more block), never on a node of the user's."""
        return self.mine_idle if self.mine_idle is not None else self.anvil

    @classmethod
    def for_tests(
        cls, state: Path, behaviours: list[str], *, seed: int = 0, rpc_url: str | None = None, rpc_key: str | None = None
    ) -> SandboxOptions:
        """The `hydrogen_sandbox` fixture's sandbox: free ports, a fresh state folder,
        no persistence, `behaviours` as its node pool, on `rpc_url` if given."""
        return cls(
            state=state,
            rpc_port=0,
            relay_port=0,
            rpc_url=rpc_url,
            rpc_key=rpc_key or ANVIL_FIRST_KEY,
            behaviours=behaviours,
            seed=seed,
            reset=True,
            # A node's own poll, for a chain that does not announce its blocks (anvil).
            tick=0.1 if rpc_url else 0.25,
            persist=False,
            # A test's burst of blocks (wallets, tasks, node set-up) must not wait for
            # the wall clock; each test's revert brings the head back to it.
            max_lead=30,
            mine_idle=rpc_url is not None,
        )


def _timestamped(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


_FAULT_SERVERS: dict[str, Server] = {"Relay": "relay", "JSON-RPC endpoint": "rpc"}


class Sandbox(SandboxApi):
    """The running sandbox; `start()` brings it up, `close()` takes it down."""

    def __init__(self, options: SandboxOptions, log: Callable[[str], None] = _timestamped) -> None:
        self.options = options
        self.log = log
        self.state = SandboxState(options.state)
        self.info = cast(SandboxInfo, {})  # filled in by start()
        self.startup_seconds = 0.0
        self.replayed_blocks = 0
        self._stack = contextlib.ExitStack()
        self._lock = threading.RLock()
        self._clock: DevClock | None = None
        self._saved_offset: int | None = None
        self._journal: ChainJournal | None = None
        self._relay: RelayService | None = None
        self._loop: NodeLoop | None = None
        self._anvil: AnvilProcess | None = None
        self._rpc: EthRpc | None = None
        self.chain: Chain | None = None
        self._deployment: Deployment | None = None
        self.faults = ServerFaults()
        self._timeline = Timeline(self._timeline_head, lambda: self._loop.ticks if self._loop else 0)
        self.faults.on_request(self._request_seen)
        self._names: dict[str, str] = {}
        self._active: list[SimulatedNode] | None = None
        self._wallets = 0
        self._test_block = 0
        self._snapshots: list[str] = []  # live snapshots, oldest first

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ start

    def start(self) -> None:
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        self.startup_seconds = time.monotonic() - began

    def _start(self) -> None:
        options = self.options
        try:
            self.state.acquire()
        except StateInUse as exc:
            raise SandboxError(str(exc)) from None
        self._stack.callback(self.state.release)
        if options.reset:
            self.state.clear()
            shutil.rmtree(self.state.folder / _NODE_STORES, ignore_errors=True)
        previous = self.state.previous_info()
        chain = self._chain(previous)
        stale_code = previous is not None and previous.get("code_version") != code_version()
        if self.replayed_blocks and stale_code:
            # The journal would rebuild the contracts of older code under the same addresses.
            moved = self.state.set_aside()
            self.log(f"the contracts changed since the last run: its state was moved to {moved}")
            chain = self._fresh_in_memory_chain()
        # Clients share the sandbox's keys (the owner's, the app's): never trust a
        # nonce remembered from our own last transaction, ask the chain each time.
        chain.keep_nonces = False
        record = deploy_or_reuse(chain, previous)
        deployment = record.deployment
        self._deployment = deployment
        self.log(
            f"contracts {'reused from the last run' if record.reused else 'deployed'}: "
            f"Task {deployment.task.address} (block {record.block})"
        )

        app = sandbox_account(options.seed, "app")
        nodes = [sandbox_account(options.seed, f"node{i}") for i in range(1, len(options.behaviours) + 1)]
        topped = ensure_app(deployment, app)
        if record.reused and topped:
            self.log(f"application wallet topped up: {', '.join(topped)}")
        joined = ensure_nodes(deployment, nodes)
        if record.reused and joined:
            self.log(f"{joined} node(s) staked and joined")
        previous_count = len((previous or {}).get("nodes") or []) if record.reused else 0
        extra = [sandbox_account(options.seed, f"node{i}") for i in range(len(nodes) + 1, previous_count + 1)]
        retire_nodes(deployment, extra, self.log)

        source = ContractChainSource(deployment.task)
        relay_url = self._serve_relay(chain, record, source)
        rpc_url = self._serve_rpc(chain) if self._journal is not None else str(options.rpc_url or self._anvil_url())
        if self._rpc is None and options.idle_mining and options.block_time is not None:
            idle = IdleMiner(chain, options.block_time, on_block=self._wake_nodes)
            idle.start()
            self._stack.callback(idle.stop)
        names: dict[str, str] = {account.address: f"node{i}" for i, account in enumerate(nodes, start=1)}
        names[app.address] = "app"
        self._names = {
            **names,
            deployment.task.address: "Task contract",
            deployment.node.address: "Node contract",
            **({deployment.owner.address: "owner"} if deployment.owner is not None else {}),
        }
        self._start_nodes(record, nodes, relay_url, source, self._names)  # shared: wallets join it later

        self.info = self._describe(chain, record, rpc_url, relay_url, app, nodes)
        # The set-up's blocks (deployment, funding, joins) were mined before the miner
        # journals each block: on disk before sandbox.json announces the contracts, or a
        # kill -9 right after start leaves a sandbox.json whose deployment no chain holds.
        self._save_chain()
        if options.dashboard_port is not None:  # hydrogen_harness.sandbox.dashboard: the live page
            dashboard = Dashboard(self)
            self.info["dashboard_url"] = self._listen(dashboard.app, options.dashboard_port, "dashboard", "--dashboard-port")
            self._stack.callback(dashboard.close)  # streams end before the server stops
            dashboard.start()
        self.state.write_info(self.info)

    def _anvil_url(self) -> str:
        assert self._anvil is not None
        return self._anvil.url

    def _fresh_in_memory_chain(self) -> Chain:
        self._clock = DevClock(offset=-_SETUP_HEADROOM)
        self._journal = ChainJournal(self.state.journal_path, self.options.seed)
        self.replayed_blocks = 0
        self.chain = in_memory_chain(self.options.seed, self._lock, self._clock.now)
        return self.chain

    def _chain(self, previous: dict[str, Any] | None) -> Chain:
        options = self.options
        if options.mode == "in-memory":
            # Set-up (deployment, funding, joins) is stamped in the recent past: its
            # dozens of blocks, one second apart, would otherwise leave the chain
            # ahead of the wall clock. `_serve_rpc` puts the clock right.
            self._clock = DevClock(offset=self.state.clock_offset() - _SETUP_HEADROOM)
            chain = in_memory_chain(options.seed, self._lock, self._clock.now)
            self._journal = ChainJournal(self.state.journal_path, options.seed)
            try:
                self.replayed_blocks = self._journal.replay(chain, self._replay_progress)
            except JournalMismatch as exc:
                moved = self.state.set_aside()
                self.log(f"cannot rebuild the chain of the last run ({exc}); its state was moved to {moved}")
                chain = self._fresh_in_memory_chain()
            except JournalCorrupt as exc:
                raise SandboxError(f"cannot rebuild the chain of the last run: {exc}. {self._recovery()}") from None
            if self._journal.repaired:
                self.log(self._journal.repaired)
            if self.replayed_blocks:
                self.log(f"chain rebuilt from {self.state.journal_path}: {self.replayed_blocks} blocks")
            self._check_deployment_survived(chain, previous)
            self._stack.callback(self._save_chain)
            self.chain = chain
            return chain
        url, key = options.rpc_url, options.rpc_key
        if options.anvil:
            binary = find_anvil()
            if binary is None:
                raise SandboxError(
                    "anvil not found: install it with `npm install --ignore-scripts --prefix .cache/anvil "
                    f"@foundry-rs/anvil-linux-amd64@{ANVIL_VERSION}`, put it on PATH, or set HYDROGEN_ANVIL"
                )
            try:
                self._anvil = start_anvil(binary, self.state.anvil_log, host=options.host, port=options.rpc_port)
            except (RuntimeError, TimeoutError) as exc:
                raise SandboxError(f"{exc} (is port {options.rpc_port} free? choose another with --rpc-port)") from exc
            self._stack.callback(self._anvil.stop)
            url = self._anvil.url
            self.log(f"anvil started at {url} ({binary})")
        assert url is not None
        try:
            chain = Chain.from_rpc(url, key, seed=options.seed)
        except Exception as exc:
            raise SandboxError(f"cannot reach the chain at {url}: {exc}") from exc
        if chain.eth_balance(chain.faucet.address) < 10 * ETH:
            raise SandboxError(f"the funding key's account {chain.faucet.address} holds less than 10 ETH on {url}")
        self.chain = chain
        return chain

    def _recovery(self) -> str:
        return (
            f"Restore {self.state.folder} from a backup, or start a new chain with --reset "
            "(it discards the chain and the Relay's data of earlier runs)"
        )

    def _check_deployment_survived(self, chain: Chain, previous: dict[str, Any] | None) -> None:
        """Refuse a journal and a sandbox.json that disagree, rather than redeploying
        the contracts at new addresses under the apps that know the old ones."""
        if previous is None:
            if self.replayed_blocks:
                raise SandboxError(
                    f"{self.state.info_path} is missing but {self.state.journal_path} holds {self.replayed_blocks} "
                    f"blocks: the contracts' addresses are unknown. {self._recovery()}"
                )
            return
        if previous.get("chain") != "in-memory" or previous.get("code_version") != code_version():
            return  # another kind of chain, or older contracts: set aside as before
        deployment = previous.get("deployment") or {}
        block, block_hash = deployment.get("block"), deployment.get("block_hash")
        if not isinstance(block, int):
            return
        head = chain.block_number
        found = chain.block_hash(block)
        if found is None or "0x" + found.hex() != block_hash:
            raise SandboxError(
                f"the chain rebuilt from {self.state.journal_path} ends at block {head}, but the contracts were "
                f"deployed at block {block} ({block_hash}): the journal lost blocks. {self._recovery()}"
            )

    def _replay_progress(self, done: int, total: int) -> None:
        if total >= 500 and (done % 500 == 0 or done == total):
            self.log(f"replaying the chain: {done}/{total} blocks")

    def _save_chain(self) -> None:
        if self._journal is None or self.chain is None or self._clock is None or not self.options.persist:
            return
        with self._lock:
            self._journal.sync(self.chain)
        if self._clock.offset != self._saved_offset:
            self.state.save_clock_offset(self._clock.offset)
            self._saved_offset = self._clock.offset

    def _listen(self, app: Any, port: int, what: str, flag: str) -> str:
        server = _FAULT_SERVERS.get(what)
        if server is not None:  # the Relay and the chain can be made to fail
            app = self.faults.wrap(app, server)
        try:
            running = self._stack.enter_context(serve_relay(app, host=self.options.host, port=port))
        except OSError as exc:
            raise SandboxError(
                f"cannot listen on {self.options.host}:{port} for the {what} ({exc}): choose another port with {flag}"
            ) from exc
        return running.url

    def _serve_relay(self, chain: Chain, record: DeploymentRecord, source: ChainSource) -> str:
        db = self.state.relay_db(chain.chain_id, record.deployment.task.address, record.block_hash)
        try:
            try:
                storage = SqliteStorage(db)
            except RelayDatabaseDamaged as exc:
                # Only the database goes aside, the chain stays: the Relay learns the tasks
                # again from the chain, but what apps uploaded to it before is not served.
                moved = self.state.set_aside_relay_db(db)
                self.log(
                    f"{exc}: moved it to {moved}; the Relay starts afresh from the chain (task args and images "
                    "uploaded in earlier runs are no longer served; tasks still in flight get no args)"
                )
                storage = SqliteStorage(db)
        except RelayDatabaseError as exc:
            raise SandboxError(f"{exc} (check the permissions of {self.state.folder})") from None
        self._stack.callback(storage.close)
        self._relay = RelayService(
            source, storage, clock=lambda: int(time.time()), lock=self._lock, start_block=record.block
        )
        # The chain may have lost blocks the Relay had read (a sandbox killed before its
        # journal had them), or have others at those heights: compared by block hash,
        # only what came from blocks no longer on the chain is undone, and said.
        rollback = self._relay.resume()
        if rollback is not None:
            self.log(rollback.describe())
        # The reference DApp (hydrogen_harness.sandbox.dapp) at /dapp/ on the Relay's port: same origin, no CORS.
        relay_app = with_dapp(create_app(self._relay), self._dapp_config)
        return self._listen(relay_app, self.options.relay_port, "Relay", "--relay-port")

    def _dapp_config(self) -> dict[str, Any]:
        return {"chain_id": self.info.get("chain_id"), "contracts": self.info.get("contracts", {})}

    def _serve_rpc(self, chain: Chain) -> str:
        assert self._clock is not None and self._journal is not None
        backend = chain.backend
        assert isinstance(backend, LockedTesterBackend)
        journal = self._journal
        with self._lock:
            self._clock.advance(_SETUP_HEADROOM)  # set-up is done: back to the wall clock
            miner = Miner(
                backend.pyevm,
                self._lock,
                self._clock,
                ChainFeed(),
                automine=self.options.automine,
                block_time=self.options.block_time,
                max_lead=self.options.max_lead if self.options.max_lead is not None else MAX_LEAD,
            )
            if self.options.persist:
                # Journaled before anyone hears of the block: an acknowledged transaction is on disk.
                def journal_block(_number: int) -> None:
                    journal.sync(chain)

                miner.after_block.append(journal_block)
            backend.miner = miner
        miner.start()
        self._stack.callback(miner.stop)
        self._rpc = EthRpc(chain, lock=self._lock, clock=self._clock, miner=miner)
        return self._listen(create_rpc_app(self._rpc), self.options.rpc_port, "JSON-RPC endpoint", "--rpc-port")

    def _start_nodes(
        self, record: DeploymentRecord, nodes: list[LocalAccount], relay_url: str, source: ChainSource, names: dict[str, str]
    ) -> None:
        deployment = record.deployment
        generator = DeterministicGenerator()
        simulated = []
        for i, (account, behaviour) in enumerate(zip(nodes, self.options.behaviours, strict=True), start=1):
            # One client per node, naming it: the timeline tells its requests from the app's.
            http = httpx.Client(
                base_url=relay_url, timeout=10.0, headers={ACTOR_HEADER: f"node{i}"}, verify=shared_tls_context()
            )
            self._stack.callback(http.close)
            relay = RelayClient(http, clock=lambda: int(time.time()), retry=NO_RETRY)
            store = self._node_store(record, account.address)
            node = SimulatedNode(
                f"node{i}", deployment, account, relay, Behaviour.parse(behaviour), generator, seed=self.options.seed, store=store
            )
            simulated.append(node)
        head = source.head()
        leftovers = self._resume_tasks(record, simulated, source, head) if record.reused else []
        after_tick = self._save_chain if self._journal is not None and self.options.persist else None
        self._loop = NodeLoop(
            deployment,
            simulated,
            source=source,
            start_block=head + 1,
            names=names,
            log=self.log,
            interval=self.options.tick,
            after_tick=after_tick,
            stale=leftovers,
            verbose=self.options.verbose,
            recorder=self._timeline,
        )
        if self._rpc is not None and self._relay is not None:
            # An evm_revert takes the chain back under the Relay and the nodes: both start afresh.
            self._rpc.on_revert.extend([self._relay.reset, self._loop.request_reset])
            # Nodes act on each block as it is mined, rather than at their next poll.
            self._stack.callback(self._rpc.feed.on_block(lambda _number: self._wake_nodes()))
        self._loop.start()
        self._stack.callback(self._loop.stop)

    def _node_store(self, record: DeploymentRecord, address: str) -> NodeTaskFile | None:
        """A node's database in the state folder, when the sandbox persists (the command)."""
        if not self.options.persist:
            return None
        store = NodeTaskFile(self.state.folder / _NODE_STORES / f"{address}.json", f"{record.deployment.task.address}@{record.block_hash}")
        if store.damaged:
            self.log(f"{store.damaged}: that node's tasks in flight cannot be resumed")
        return store

    def _resume_tasks(self, record: DeploymentRecord, nodes: list[SimulatedNode], source: ChainSource, head: int) -> list[StaleTask]:
        """Tasks in flight when the last run stopped: their nodes take them back (from their
        stores and the chain); those a node cannot resume, or none of whose nodes runs now,
        are returned, to cancel after their deadline."""
        events = source.events(record.block, head)
        infos = live_tasks(record.deployment, events)
        if not infos:
            return []
        lost: set[int] = set()
        for node in nodes:
            lost.update(node.resume(infos, events))
        ours = {node.address for node in nodes}
        stale = [i for i in infos if i.id in lost or not ours.intersection(i.selected_nodes)]
        resumed = [i.id for i in infos if i not in stale]
        if resumed:
            self.log(f"tasks in flight when the last run stopped, resumed by their nodes: {', '.join(map(str, resumed))}")
        if stale:
            ids = ", ".join(str(i.id) for i in stale)
            self.log(f"tasks in flight that cannot be resumed: {ids}; they will be cancelled after their deadline")
        return [StaleTask(i.id, i.timeout, i.selected_nodes) for i in stale]

    def _request_seen(self, seen: RequestSeen) -> None:
        """After each request a server answered: note it, and wake the nodes when the
        app uploaded something (task args), so they fetch it at once."""
        self._timeline.request(seen)
        if seen.server == "relay" and seen.method == "POST" and ACTOR_HEADER not in seen.headers:
            self._wake_nodes()

    def _timeline_head(self) -> tuple[int, int]:
        if self.chain is None:
            return 0, int(time.time())
        if self._rpc is not None:  # in process: the head is a cheap read
            return self.chain.block_number, self.chain.now()
        # Over JSON-RPC, not from a server's thread: the block the nodes saw last.
        return (self._loop.head if self._loop is not None else 0), int(time.time())

    def _describe(
        self, chain: Chain, record: DeploymentRecord, rpc_url: str, relay_url: str, app: LocalAccount, nodes: list[LocalAccount]
    ) -> SandboxInfo:
        d = record.deployment
        owner = d.owner
        return {
            "rpc_url": rpc_url,
            "relay_url": relay_url,
            "chain_id": chain.chain_id,
            "contracts": d.addresses,
            "abi": {"token": d.token.abi, "node": d.node.abi, "task": d.task.abi},
            "app": {"address": app.address, "private_key": "0x" + bytes(app.key).hex()},
            "owner": {
                "address": owner.address if owner else None,
                "private_key": "0x" + bytes(owner.key).hex() if owner else None,
            },
            "nodes": [{"address": a.address, "behaviour": b} for a, b in zip(nodes, self.options.behaviours, strict=True)],
            "chain": self.options.mode,
            "deployment": {"block": record.block, "block_hash": record.block_hash},
            "code_version": code_version(),
            "relay_db": str(self.state.relay_db(chain.chain_id, d.task.address, record.block_hash)),
            "pid": os.getpid(),
            "started_at": int(time.time()),
        }

    # ------------------------------------------------------------ stop

    def close(self) -> None:
        """Stop the node loop, then the servers, save the chain, stop anvil."""
        self._stack.close()

    # ------------------------------------------------------------ summary

    def persistence_note(self) -> str:
        mode = self.options.mode
        folder = self.state.folder
        if mode == "in-memory":
            return (
                f"the chain is journaled to {folder / 'chain.jsonl'} and rebuilt on the next start, so contracts, "
                f"balances, tasks and the Relay's uploads ({folder}/relay-*.sqlite) carry over; the nodes keep "
                f"their tasks in flight in {folder / _NODE_STORES} and resume them. If the chain comes back without "
                "blocks the Relay had read, the Relay drops only what came from them (and logs it); a damaged Relay "
                "database is moved to stale-<time>/ and the Relay starts afresh from the chain, without the uploads "
                "of earlier runs. --reset starts afresh."
            )
        if mode == "anvil":
            return (
                "anvil starts from genesis each time, so the contracts are redeployed and task ids restart at 1; "
                f"the Relay keeps one database per deployment in {folder}, older ones stay on disk unused."
            )
        return (
            f"the chain lives in the node at {self.options.rpc_url}: the contracts in sandbox.json are reused while "
            f"their code is there, and the Relay's database for that deployment ({folder}/relay-*.sqlite) is kept."
        )

    def mining_note(self) -> str:
        """How blocks are made, for the summary."""
        options = self.options
        every = f"a block every {options.block_time:g} s" if options.block_time else ""
        if options.mode == "in-memory":
            lead = options.max_lead if options.max_lead is not None else MAX_LEAD
            idle = f"{every} while idle" if every and options.automine else every
            made = " and ".join(part for part in ("each transaction at once" if options.automine else "", idle) if part)
            return f"{made or 'only on evm_mine'}; the head at most {lead} s ahead of the wall clock"
        if options.idle_mining and options.block_time is not None:
            return f"the node's own, and {every} while idle (evm_mine)"
        return "the node's own"

    def summary(self) -> str:
        info = self.info
        c = info["contracts"]
        lines = [
            f"Hydrogen Network sandbox up in {self.startup_seconds:.1f} s ({info['chain']} chain)",
            f"  JSON-RPC   {info['rpc_url']}   chain id {info['chain_id']}   (WebSocket on the same port)",
            f"  mining     {self.mining_note()}",
            f"  Relay      {info['relay_url']}",
            f"  contracts  CNX {c['token']}  Node {c['node']}  Task {c['task']}",
            f"  app wallet {info['app']['address']} ({APP_CNX // CNX:,} CNX at start; key in sandbox.json)",
        ]
        if info.get("dashboard_url"):
            lines.insert(3, f"  dashboard  {info['dashboard_url']}   (tasks, nodes, ledger, images; live)")
        for index, node in enumerate(info["nodes"], start=1):
            lines.append(f"  node{index:<6} {node['address']} {node['behaviour']}")
        if not info["nodes"]:
            lines.append("  nodes      no simulated nodes; bring your own (stake 400 CNX and join the Node contract)")
        lines += [
            f"  sandbox.json  {self.state.info_path.resolve()}",
            f"  persists   {self.persistence_note()}",
            "Task progress follows. Ctrl+C stops the sandbox.",
        ]
        return "\n".join(lines)


def run_sandbox(options: SandboxOptions, log: Callable[[str], None] = _timestamped) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop, 2 if it could not start."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sandbox = Sandbox(options, log)
        try:
            sandbox.start()
        except SandboxError as exc:
            log(f"error: {exc}")
            return 2
        try:
            print(sandbox.summary(), flush=True)
            print(f"wrote {sandbox.state.info_path}", flush=True)
            while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
                pass
            log("stopping")
        finally:
            began = time.monotonic()
            sandbox.close()
            log(f"stopped in {time.monotonic() - began:.1f} s")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
