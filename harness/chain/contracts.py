"""Typed bindings to the CNX token, the Node registry and the Task contract.

Callers pass accounts, addresses, ints and bytes, and get back typed records
(`TaskInfo`, `NodeStatus`, event dataclasses); no raw ABI handling leaks out.
Every transaction goes through `Chain.send`, so a revert raises `RevertError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from hydrogen_harness.chain.abi_calls import ContractCall, FunctionTable
from hydrogen_harness.chain.chain import ETH, Chain
from hydrogen_harness.chain.compiler import compile_contract
from hydrogen_harness.protocol.addresses import checksum
from hydrogen_harness.protocol.events import EventCodec, TaskCreated, TaskEvent
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, ZERO_HASH, NodeStatus, TaskInfo

__all__ = ["CreatedTask", "Deployment", "NodeRegistry", "TaskContract", "Token", "attach", "deploy"]

TASK_GAS = 1_500_000


class _Binding:
    def __init__(self, chain: Chain, contract: Any) -> None:
        self.chain = chain
        self.contract = contract
        self.address: str = contract.address
        self.abi: list[dict[str, Any]] = list(contract.abi)
        self._table = FunctionTable(self.address, self.abi)

    def _fn(self, name: str, *args: Any) -> ContractCall:
        return self._table.call(name, *args)

    def _call(self, name: str, *args: Any, block: int | str = "latest") -> Any:
        return self.chain.call(self._fn(name, *args), block=block)

    def _send(self, sender: LocalAccount, name: str, *args: Any, gas: int = TASK_GAS) -> TxReceipt:
        return self.chain.transact(sender, self._fn(name, *args), gas=gas)

    def owner(self) -> str:
        return str(self._call("owner"))

    def transfer_ownership(self, sender: LocalAccount, new_owner: str) -> TxReceipt:
        return self._send(sender, "transferOwnership", checksum(new_owner))


class Token(_Binding):
    """The CNX ERC20 token."""

    def balance_of(self, address: str, block: int | str = "latest") -> int:
        return int(self._call("balanceOf", checksum(address), block=block))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self._call("allowance", checksum(owner), checksum(spender)))

    def total_supply(self) -> int:
        return int(self._call("totalSupply"))

    def transfer(self, sender: LocalAccount, to: str, amount: int) -> TxReceipt:
        return self._send(sender, "transfer", checksum(to), amount, gas=100_000)

    def approve(self, sender: LocalAccount, spender: str, amount: int) -> TxReceipt:
        return self._send(sender, "approve", checksum(spender), amount, gas=100_000)

    def transfer_from(self, sender: LocalAccount, owner: str, to: str, amount: int) -> TxReceipt:
        return self._send(sender, "transferFrom", checksum(owner), checksum(to), amount, gas=100_000)


class NodeRegistry(_Binding):
    """The Node contract: joining, staking, pausing and quitting."""

    def status(self, address: str, block: int | str = "latest") -> NodeStatus:
        return NodeStatus(int(self._call("getNodeStatus", checksum(address), block=block)))

    def total_nodes(self) -> int:
        return int(self._call("totalNodes"))

    def available_nodes(self) -> int:
        return int(self._call("availableNodes"))

    def available_node_at(self, index: int) -> str:
        return str(self._call("getAvailableNodeAt", index))

    def join(self, node: LocalAccount) -> TxReceipt:
        return self._send(node, "join", gas=300_000)

    def quit(self, node: LocalAccount) -> TxReceipt:
        return self._send(node, "quit", gas=300_000)

    def pause(self, node: LocalAccount) -> TxReceipt:
        return self._send(node, "pause", gas=300_000)

    def resume(self, node: LocalAccount) -> TxReceipt:
        return self._send(node, "resume", gas=300_000)

    def start_task(self, sender: LocalAccount, node: str) -> TxReceipt:
        return self._send(sender, "startTask", checksum(node), gas=300_000)

    def finish_task(self, sender: LocalAccount, node: str) -> TxReceipt:
        return self._send(sender, "finishTask", checksum(node), gas=300_000)

    def slash(self, sender: LocalAccount, node: str) -> TxReceipt:
        return self._send(sender, "slash", checksum(node), gas=300_000)

    def update_task_contract_address(self, sender: LocalAccount, task: str) -> TxReceipt:
        return self._send(sender, "updateTaskContractAddress", checksum(task), gas=100_000)


@dataclass(frozen=True)
class CreatedTask:
    """What `createTask` produced: the id, the 3 nodes by round, the receipt."""

    task_id: int
    selected_nodes: tuple[str, str, str]
    receipt: TxReceipt

    @property
    def tx_hash(self) -> str:
        return "0x" + bytes(self.receipt["transactionHash"]).hex()


class TaskContract(_Binding):
    """The Task contract: escrow, selection, commit/reveal and settlement."""

    def __init__(self, chain: Chain, contract: Any) -> None:
        super().__init__(chain, contract)
        self.codec = EventCodec(self.abi)

    # views
    def get_task(self, task_id: int, block: int | str = "latest") -> TaskInfo:
        raw = self._call("getTask", task_id, block=block)
        return TaskInfo(
            id=int(raw[0]),
            creator=checksum(raw[1]),
            task_hash=bytes(raw[2]),
            data_hash=bytes(raw[3]),
            is_success=bool(raw[4]),
            selected_nodes=tuple(checksum(a) for a in raw[5]),
            commitments=tuple(bytes(c) for c in raw[6]),
            nonces=tuple(bytes(n) for n in raw[7]),
            results=tuple(bytes(r) for r in raw[8]),
            result_disclosed_rounds=tuple(int(r) for r in raw[9]),
            result_node=checksum(raw[10]),
            aborted=bool(raw[11]),
            timeout=int(raw[12]),
            balance=int(raw[13]),
        )

    def node_task(self, node: str, block: int | str = "latest") -> int:
        return int(self._call("getNodeTask", checksum(node), block=block))

    def task_fee(self, task_id: int) -> int:
        return int(self._call("getTaskFee", task_id))

    def fee_per_node(self, block: int | str = "latest") -> int:
        return int(self._call("taskFeePerNode", block=block))

    def distance_threshold(self, block: int | str = "latest") -> int:
        return int(self._call("distanceThreshold", block=block))

    def timeout(self, block: int | str = "latest") -> int:
        return int(self._call("timeout", block=block))

    def total_tasks(self) -> int:
        return int(self._call("totalTasks"))

    def total_success_tasks(self) -> int:
        return int(self._call("totalSuccessTasks"))

    def total_aborted_tasks(self) -> int:
        return int(self._call("totalAbortedTasks"))

    def selected_node(self, task_hash: bytes, data_hash: bytes, round_: int) -> str:
        return str(self._call("getSelectedNode", task_hash, data_hash, round_))

    # owner settings
    def update_fee_per_node(self, sender: LocalAccount, fee: int) -> TxReceipt:
        return self._send(sender, "updateTaskFeePerNode", fee, gas=100_000)

    def update_distance_threshold(self, sender: LocalAccount, threshold: int) -> TxReceipt:
        return self._send(sender, "updateDistanceThreshold", threshold, gas=100_000)

    def update_timeout(self, sender: LocalAccount, seconds: int) -> TxReceipt:
        return self._send(sender, "updateTimeout", seconds, gas=100_000)

    # the task lifecycle
    def create_task_call(self, task_hash: bytes, data_hash: bytes = ZERO_HASH) -> ContractCall:
        """createTask encoded, to sign and send later (an application persists it first)."""
        return self._fn("createTask", task_hash, data_hash)

    def create_task(self, sender: LocalAccount, task_hash: bytes, data_hash: bytes = ZERO_HASH) -> CreatedTask:
        receipt = self._send(sender, "createTask", task_hash, data_hash)
        created = [e for e in self.events(receipt) if isinstance(e, TaskCreated)]
        if len(created) != 3:
            raise RuntimeError(f"createTask emitted {len(created)} TaskCreated events, expected 3")
        ordered = sorted(created, key=lambda e: e.round)
        nodes = (ordered[0].selected_node, ordered[1].selected_node, ordered[2].selected_node)
        return CreatedTask(task_id=ordered[0].task_id, selected_nodes=nodes, receipt=receipt)

    def submit_commitment(self, sender: LocalAccount, task_id: int, round_: int, commitment: bytes, nonce: bytes) -> TxReceipt:
        return self._send(sender, "submitTaskResultCommitment", task_id, round_, commitment, nonce)

    def disclose(self, sender: LocalAccount, task_id: int, round_: int, result: bytes) -> TxReceipt:
        return self._send(sender, "discloseTaskResult", task_id, round_, result)

    def report_error(self, sender: LocalAccount, task_id: int, round_: int) -> TxReceipt:
        return self._send(sender, "reportTaskError", task_id, round_)

    def report_uploaded(self, sender: LocalAccount, task_id: int, round_: int) -> TxReceipt:
        return self._send(sender, "reportResultsUploaded", task_id, round_)

    def cancel(self, sender: LocalAccount, task_id: int) -> TxReceipt:
        return self._send(sender, "cancelTask", task_id)

    # events
    def events(self, receipt: TxReceipt) -> list[TaskEvent]:
        """The Task events in a receipt, in log order."""
        mine = [log for log in receipt["logs"] if log["address"].lower() == self.address.lower()]
        return self.codec.decode_all(mine)

    def events_between(self, from_block: int, to_block: int) -> list[TaskEvent]:
        """Every Task event in blocks [from_block, to_block], in chain order."""
        if to_block < from_block:
            return []
        return self.codec.decode_all(self.chain.logs(self.address, from_block, to_block))


@dataclass
class Deployment:
    """The three contracts deployed and wired, with the owner's account."""

    chain: Chain
    owner: LocalAccount | None
    token: Token
    node: NodeRegistry
    task: TaskContract

    def fund(self, address: str, cnx: int = 0, eth: int = 0) -> None:
        """Send `cnx` CNX units from the owner (who holds the supply) and `eth` wei."""
        if cnx and self.owner is None:
            raise ValueError("this deployment was attached without the owner's key: it cannot hand out CNX")
        if cnx and self.owner is not None:
            self.token.transfer(self.owner, address, cnx)
        if eth:
            self.chain.send_eth(address, eth)

    def new_account(self, cnx: int = 0, eth: int = 10 * ETH) -> LocalAccount:
        """A fresh account funded with `eth` wei and `cnx` CNX units."""
        account = self.chain.new_account(eth=eth)
        if cnx:
            self.fund(account.address, cnx=cnx)
        return account

    def new_node(self, join: bool = True, eth: int = 10 * ETH) -> LocalAccount:
        """A fresh account holding one stake; approved and joined when `join`."""
        account = self.new_account(cnx=STAKE_AMOUNT, eth=eth)
        self.token.approve(account, self.node.address, STAKE_AMOUNT)
        if join:
            self.node.join(account)
        return account

    def new_app(self, cnx: int = 1000 * CNX, approve: int | None = None, eth: int = 10 * ETH) -> LocalAccount:
        """A fresh application wallet with `cnx` and, unless None, an allowance to Task."""
        account = self.new_account(cnx=cnx, eth=eth)
        if approve is not None:
            self.token.approve(account, self.task.address, approve)
        return account

    @property
    def addresses(self) -> dict[str, str]:
        return {"token": self.token.address, "node": self.node.address, "task": self.task.address}


def attach(chain: Chain, token: str, node: str, task: str, owner: LocalAccount | None = None) -> Deployment:
    """Bind to contracts already deployed at these addresses (a sandbox, a devnet)."""
    abis = {n: compile_contract(n).abi for n in ("CNX", "Node", "Task")}
    w3 = chain.w3
    return Deployment(
        chain=chain,
        owner=owner,
        token=Token(chain, w3.eth.contract(address=checksum(token), abi=abis["CNX"])),
        node=NodeRegistry(chain, w3.eth.contract(address=checksum(node), abi=abis["Node"])),
        task=TaskContract(chain, w3.eth.contract(address=checksum(task), abi=abis["Task"])),
    )


def deploy(chain: Chain, owner: LocalAccount | None = None, source_dir: Path | None = None) -> Deployment:
    """Deploy CNX, Node(token) and Task(node, token), then wire Node to Task.

    The owner (the chain's faucet unless given) deploys all three, so it holds the
    whole CNX supply and owns Node and Task.
    """
    owner = owner or chain.faucet
    cnx, node, task = (compile_contract(n, source_dir) for n in ("CNX", "Node", "Task"))
    token_c = chain.deploy(owner, cnx.abi, cnx.bytecode)
    node_c = chain.deploy(owner, node.abi, node.bytecode, token_c.address)
    task_c = chain.deploy(owner, task.abi, task.bytecode, node_c.address, token_c.address)
    deployment = Deployment(
        chain=chain,
        owner=owner,
        token=Token(chain, token_c),
        node=NodeRegistry(chain, node_c),
        task=TaskContract(chain, task_c),
    )
    deployment.node.update_task_contract_address(owner, deployment.task.address)
    return deployment
