"""The chain the property tests run on, built once per process, and a fast reader.

`World.build()` deploys the contracts (from HYDROGEN_CONTRACTS_DIR when set, so the
mutation check can swap in a mutant), a test-only Lens view contract, 8 node
accounts and 3 application wallets with varied balances and allowances, and joins
the first 3 nodes. Every state-machine run then starts from a snapshot of that
state (`chain.isolation()`, ~5 ms) instead of a fresh deployment (~0.5 s).

`World.read(task_ids)` returns everything the invariants compare in one eth_call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from hydrogen_harness.chain.abi_calls import FunctionTable
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.compiler import compile_contract
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, NodeStatus, TaskInfo

__all__ = ["BACKEND_ENV", "BACKENDS", "CONTRACTS_DIR_ENV", "backend_name", "INFINITE", "Reading", "World", "contracts_dir", "new_chain", "source_folder"]

CONTRACTS_DIR_ENV = "HYDROGEN_CONTRACTS_DIR"
BACKEND_ENV = "HYDROGEN_BACKEND"
BACKENDS = ("in-memory", "revm")
INFINITE = 2**256 - 1
LENS_DIR = Path(__file__).parent / "lens"
NODE_COUNT = 8
PREJOINED = 3
WORLD_SEED = 7
LENS_MAX_TASKS = 16  # MAX_TASKS in lens/Lens.vy

# (name, CNX held, allowance to Task): a well-funded app with a finite allowance, one
# with an infinite allowance (its createTask emits no Approval), and a poor one that
# soon meets "Not enough tokens for task".
APPS = (("app1", 1000 * CNX, 600 * CNX), ("app2", 300 * CNX, INFINITE), ("app3", 45 * CNX, 1000 * CNX))
# Nodes hold 3 stakes; even ones approve Node without limit, odd ones for 2 joins only.
NODE_CNX = 3 * STAKE_AMOUNT

_TASK_INFO_TYPE = "(uint256,address,bytes32,bytes32,bool,address[],bytes32[],bytes32[],bytes[],uint256[],address,bool,uint256,uint256)"


def backend_name() -> str:
    """The chain under the property tests: revm (the fast path, the default), or the
    in-memory eth-tester chain with HYDROGEN_BACKEND=in-memory. Whichever it is,
    test_on_eth_tester.py also runs a few examples of each property on eth-tester."""
    name = os.environ.get(BACKEND_ENV) or "revm"
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={name!r}: expected 'in-memory' or 'revm'")
    return name


def new_chain(backend: str, seed: int) -> Chain:
    """An empty chain of `backend` ("in-memory": eth-tester, or "revm")."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected 'in-memory' or 'revm'")
    return Chain.revm(seed=seed) if backend == "revm" else Chain.in_memory(seed=seed)


def contracts_dir() -> Path | None:
    """The contracts under test if HYDROGEN_CONTRACTS_DIR names them, else None (the
    shipped sources, which `deploy` compiles by default)."""
    configured = os.environ.get(CONTRACTS_DIR_ENV)
    if not configured:
        return None
    folder = Path(configured)
    if not (folder / "Task.vy").is_file():
        raise ValueError(f"{CONTRACTS_DIR_ENV}={configured!r} holds no Task.vy")
    return folder


def source_folder() -> Path:
    """The folder of the contracts under test, whichever it is."""
    return contracts_dir() or Path(str(resources.files("hydrogen_harness.contract_sources")))


@dataclass(frozen=True)
class Reading:
    """One batched read of the chain."""

    balances: dict[str, int]
    allowances: dict[tuple[str, str], int]
    status: dict[str, NodeStatus]
    node_task: dict[str, int]
    supply: int
    total_nodes: int
    available_nodes: int
    total_tasks: int
    total_success: int
    total_aborted: int
    fee: int
    threshold: int
    timeout: int
    tasks: dict[int, TaskInfo]
    task_fees: dict[int, int]


def _task_info(raw: bytes) -> TaskInfo:
    (t,) = decode([_TASK_INFO_TYPE], raw)
    return TaskInfo(
        id=int(t[0]),
        creator=to_checksum_address(t[1]),
        task_hash=bytes(t[2]),
        data_hash=bytes(t[3]),
        is_success=bool(t[4]),
        selected_nodes=tuple(to_checksum_address(a) for a in t[5]),
        commitments=tuple(bytes(c) for c in t[6]),
        nonces=tuple(bytes(n) for n in t[7]),
        results=tuple(bytes(r) for r in t[8]),
        result_disclosed_rounds=tuple(int(r) for r in t[9]),
        result_node=to_checksum_address(t[10]),
        aborted=bool(t[11]),
        timeout=int(t[12]),
        balance=int(t[13]),
    )


class World:
    """Deployment, actors and the Lens, plus the snapshot every run starts from."""

    def __init__(self, chain: Chain, deployment: Deployment, lens: Any, apps: dict[str, LocalAccount], nodes: dict[str, LocalAccount]) -> None:
        self.chain = chain
        self.d = deployment
        self.lens = lens
        self.apps = apps
        self.nodes = nodes
        assert deployment.owner is not None
        self.owner: LocalAccount = deployment.owner
        self.names: dict[str, str] = {a.address: n for n, a in {**apps, **nodes}.items()}
        self.names[self.owner.address] = "owner"
        self.names[deployment.task.address] = "Task"
        self.names[deployment.node.address] = "Node"
        # Every CNX holder there is: the supply must stay among them.
        self.holders = [self.owner.address, deployment.task.address, deployment.node.address]
        self.holders += [a.address for a in apps.values()] + [a.address for a in nodes.values()]
        self.spenders = [deployment.task.address] * 3 + [deployment.task.address] * len(apps) + [deployment.node.address] * len(nodes)
        self.node_addresses = [a.address for a in nodes.values()]
        self.baseline: Reading = self.read([])

    @classmethod
    def build(cls, source_dir: Path | None = None, backend: str | None = None) -> World:
        """The world on `backend` ("in-memory" or "revm"; None: `backend_name()`)."""
        chain = new_chain(backend or backend_name(), WORLD_SEED)
        d = deploy(chain, source_dir=source_dir or contracts_dir())
        lens_c = compile_contract("Lens", LENS_DIR)
        assert d.owner is not None
        lens = chain.deploy(d.owner, lens_c.abi, lens_c.bytecode)
        apps: dict[str, LocalAccount] = {}
        for name, cnx, allowance in APPS:
            apps[name] = d.new_app(cnx=cnx, approve=allowance)
        nodes: dict[str, LocalAccount] = {}
        for i in range(NODE_COUNT):
            account = d.new_account(cnx=NODE_CNX)
            d.token.approve(account, d.node.address, INFINITE if i % 2 == 0 else 2 * STAKE_AMOUNT)
            nodes[f"node{i + 1}"] = account
        for account in list(nodes.values())[:PREJOINED]:
            d.node.join(account)
        return cls(chain, d, lens, apps, nodes)

    def name(self, address: str) -> str:
        return self.names.get(address, address[:10])

    def read(
        self,
        task_ids: list[int],
        nodes: list[str] | None = None,
        allowances: list[tuple[str, str]] | None = None,
        balances: bool = True,
    ) -> Reading:
        """The counters, getTask/getTaskFee of `task_ids`, the nodes and allowances asked
        for (all when None) and, when `balances`, every holder's CNX balance."""
        d = self.d
        holders = self.holders if balances else []
        nodes = self.node_addresses if nodes is None else nodes
        pairs = list(zip(self.holders, self.spenders)) if allowances is None else allowances
        first, rest = task_ids[:LENS_MAX_TASKS], task_ids[LENS_MAX_TASKS:]
        # Encoded with eth-abi: web3's argument checks cost more than the call itself.
        lens = FunctionTable(self.lens.address, self.lens.abi)
        fn = lens.call(
            "read",
            d.token.address,
            d.node.address,
            d.task.address,
            holders,
            [o for o, _ in pairs],
            [s for _, s in pairs],
            nodes,
            first,
        )
        balances, allowances, statuses, node_tasks, counters, tasks, fees = self.chain.call(fn)
        tasks, fees = list(tasks), list(fees)
        while rest:
            chunk, rest = rest[:LENS_MAX_TASKS], rest[LENS_MAX_TASKS:]
            more = self.chain.call(lens.call("read", d.token.address, d.node.address, d.task.address, [], [], [], [], chunk))
            tasks += more[5]
            fees += more[6]
        return Reading(
            balances=dict(zip(holders, map(int, balances))),
            allowances={pair: int(a) for pair, a in zip(pairs, allowances)},
            status={n: NodeStatus(int(s)) for n, s in zip(nodes, statuses)},
            node_task={n: int(t) for n, t in zip(nodes, node_tasks)},
            supply=int(counters[0]),
            total_nodes=int(counters[1]),
            available_nodes=int(counters[2]),
            total_tasks=int(counters[3]),
            total_success=int(counters[4]),
            total_aborted=int(counters[5]),
            fee=int(counters[6]),
            threshold=int(counters[7]),
            timeout=int(counters[8]),
            tasks={i: _task_info(bytes(raw)) for i, raw in zip(task_ids, tasks)},
            task_fees={i: int(f) for i, f in zip(task_ids, fees)},
        )
