"""The sandbox's contracts and wallets: deployed or reused, funded, nodes joined.

Everything here is idempotent, so a restart on a chain that persisted (the
replayed in-memory chain, or a node given with --rpc-url) finds the contracts of
the previous run and only tops up what was spent: the application wallet back
to 10,000 CNX, a slashed or quit node staked and joined again, a node beyond the
new `--nodes` count asked to quit (nobody would run it, so tasks that selected
it would stall until their deadline).

Keys are derived from the seed, so the application and the nodes keep their
addresses from one start to the next.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from hydrogen_harness.chain.chain import ETH, Chain
from hydrogen_harness.chain.compiler import compile_contract
from hydrogen_harness.chain.contracts import Deployment, attach, deploy
from hydrogen_harness.protocol.events import TaskCreated, TaskEvent
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, NodeStatus, TaskInfo

__all__ = [
    "APP_CNX",
    "APP_ETH",
    "DeploymentRecord",
    "code_version",
    "ensure_app",
    "ensure_nodes",
    "live_tasks",
    "retire_nodes",
    "sandbox_account",
    "deploy_or_reuse",
]

APP_CNX = 10_000 * CNX
APP_ETH = 100 * ETH
NODE_ETH = 10 * ETH
_LOW_ETH = ETH


def sandbox_account(seed: int, role: str) -> LocalAccount:
    """The account of `role` ("app", "node1", ...) for this seed."""
    return Account.from_key(keccak(text=f"hydrogen-harness-sandbox:{seed}:{role}"))


@functools.cache
def code_version() -> str:
    """A digest of the contracts' bytecode: a reused deployment must run this code."""
    digest = hashlib.sha256()
    for name in ("CNX", "Node", "Task"):
        digest.update(compile_contract(name).bytecode)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DeploymentRecord:
    deployment: Deployment
    block: int  # the block that finished the deployment: the Relay reads events from there
    block_hash: str
    reused: bool


def _block_hash(chain: Chain, number: int) -> str | None:
    found = chain.block_hash(number)
    return "0x" + found.hex() if found is not None else None


def _reusable(chain: Chain, previous: dict[str, Any] | None) -> bool:
    if not previous or previous.get("chain_id") != chain.chain_id or previous.get("code_version") != code_version():
        return False
    contracts, record = previous.get("contracts") or {}, previous.get("deployment") or {}
    if set(contracts) != {"token", "node", "task"} or "block" not in record:
        return False
    if any(not chain.code(address) for address in contracts.values()):
        return False
    return _block_hash(chain, int(record["block"])) == record.get("block_hash")


def deploy_or_reuse(chain: Chain, previous: dict[str, Any] | None) -> DeploymentRecord:
    """The previous run's contracts if this chain still has them (same code), else new ones."""
    if _reusable(chain, previous):
        assert previous is not None
        contracts, record = previous["contracts"], previous["deployment"]
        owner_key = (previous.get("owner") or {}).get("private_key")
        owner = Account.from_key(owner_key) if owner_key else None
        deployment = attach(chain, contracts["token"], contracts["node"], contracts["task"], owner=owner)
        return DeploymentRecord(deployment, int(record["block"]), str(record["block_hash"]), reused=True)
    deployment = deploy(chain)
    block = chain.block_number
    block_hash = _block_hash(chain, block)
    assert block_hash is not None
    return DeploymentRecord(deployment, block, block_hash, reused=False)


def ensure_app(deployment: Deployment, app: LocalAccount) -> list[str]:
    """Top the application wallet up to 100 ETH and 10,000 CNX; returns what was done."""
    done = []
    chain = deployment.chain
    eth = chain.eth_balance(app.address)
    if eth < APP_ETH // 2:
        chain.send_eth(app.address, APP_ETH - eth)
        done.append(f"sent {(APP_ETH - eth) / ETH:g} ETH")
    cnx = deployment.token.balance_of(app.address)
    if cnx < APP_CNX:
        deployment.fund(app.address, cnx=APP_CNX - cnx)
        done.append(f"sent {(APP_CNX - cnx) / CNX:g} CNX")
    return done


def ensure_nodes(deployment: Deployment, nodes: list[LocalAccount]) -> int:
    """Make every node account funded, staked and joined (or resumed); returns how many joined."""
    chain = deployment.chain
    joined = 0
    for account in nodes:
        status = deployment.node.status(account.address)
        if status is NodeStatus.PAUSED:
            deployment.node.resume(account)
            continue
        if status is not NodeStatus.QUIT:
            continue
        if chain.eth_balance(account.address) < _LOW_ETH:
            chain.send_eth(account.address, NODE_ETH)
        cnx = deployment.token.balance_of(account.address)
        if cnx < STAKE_AMOUNT:
            deployment.fund(account.address, cnx=STAKE_AMOUNT - cnx)
        if deployment.token.allowance(account.address, deployment.node.address) < STAKE_AMOUNT:
            deployment.token.approve(account, deployment.node.address, STAKE_AMOUNT)
        deployment.node.join(account)
        joined += 1
    return joined


def retire_nodes(deployment: Deployment, accounts: list[LocalAccount], log: Callable[[str], None]) -> None:
    """Ask nodes of an earlier, larger run to quit: no one runs them now."""
    for account in accounts:
        status = deployment.node.status(account.address)
        if status in (NodeStatus.AVAILABLE, NodeStatus.PAUSED):
            deployment.node.quit(account)
            log(f"node {account.address} from an earlier run quit (the sandbox now runs fewer nodes)")
        elif status is not NodeStatus.QUIT:
            log(f"node {account.address} from an earlier run is {status.name}: it stays until its task ends")


def live_tasks(deployment: Deployment, events: Sequence[TaskEvent]) -> list[TaskInfo]:
    """The tasks created in `events` that the contract still holds (not yet settled or cancelled)."""
    created = sorted({e.task_id for e in events if isinstance(e, TaskCreated)})
    infos = [deployment.task.get_task(task_id) for task_id in created]
    return [info for info in infos if info.exists]
